package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector ipamd updates. Create it once with New and
// pass it down; nothing here is global.
type Metrics struct {
	Registry *prometheus.Registry

	// Upstream-compatible.
	IPAMDErrors        *prometheus.CounterVec   // awscni_ipamd_error_count{fn}
	ActionInProgress   *prometheus.GaugeVec     // awscni_ipamd_action_inprogress{fn}
	ENIMax             prometheus.Gauge         // awscni_eni_max
	IPMax              prometheus.Gauge         // awscni_ip_max
	Reconciles         *prometheus.CounterVec   // awscni_reconcile_count{fn}
	AddIPRequests      prometheus.Counter       // awscni_add_ip_req_count
	DelIPRequests      *prometheus.CounterVec   // awscni_del_ip_req_count{reason}
	PodENIErrors       *prometheus.CounterVec   // awscni_pod_eni_error_count{fn}
	AWSAPILatency      *prometheus.SummaryVec   // awscni_aws_api_latency_ms{api,error,status}
	AWSAPIErrors       *prometheus.CounterVec   // awscni_aws_api_error_count{api,error}
	AWSUtilsErrors     *prometheus.CounterVec   // awscni_aws_utils_error_count{fn,error}
	EC2Requests        *prometheus.CounterVec   // awscni_ec2api_req_count{fn}
	EC2Errors          *prometheus.CounterVec   // awscni_ec2api_error_count{fn}
	ENIAllocated       prometheus.Gauge         // awscni_eni_allocated
	TotalIPs           prometheus.Gauge         // awscni_total_ip_addresses
	AssignedIPs        prometheus.Gauge         // awscni_assigned_ip_addresses
	ForceRemovedENIs   prometheus.Counter       // awscni_force_removed_enis
	ForceRemovedIPs    prometheus.Counter       // awscni_force_removed_ips
	TotalIPv4Prefixes  prometheus.Gauge         // awscni_total_ipv4_prefixes
	AssignedIPPerCIDR  *prometheus.GaugeVec     // awscni_assigned_ip_per_cidr{cidr}
	NoAvailableIPs     prometheus.Counter       // awscni_no_available_ip_addresses
	AssignedIPPerENI   *prometheus.GaugeVec     // awscni_assigned_ip_per_eni{eni}
	StartupDuration    *prometheus.HistogramVec // awscni_ipamd_startup_duration_seconds{success,with_api_server,failure_reason}
	NodeInitDuration   *prometheus.HistogramVec // awscni_ipamd_node_initialization_duration_seconds{success}
	ConnmarkBackend    *prometheus.GaugeVec     // awscni_connmark_backend{backend}
	ConnmarkReconciles *prometheus.CounterVec   // awscni_connmark_reconcile_total{result}
	BuildInfo          *prometheus.GaugeVec     // awscni_build_info{version,goversion}

	// Ours.
	AddNetworkWait *prometheus.HistogramVec // vpccni_add_network_wait_seconds{result}
	EC2Calls       *prometheus.CounterVec   // vpccni_ec2_calls_total{action,code}
	EC2Throttles   *prometheus.CounterVec   // vpccni_ec2_throttles_total{action}
	CoolingIPs     prometheus.Gauge         // vpccni_cooling_ip_addresses
	PoolActions    *prometheus.CounterVec   // vpccni_pool_actions_total{action,result}
	OrphanReleases prometheus.Counter       // vpccni_orphaned_addresses_released_total
	CheckpointOK   prometheus.Gauge         // vpccni_checkpoint_writable
	RestoreDropped *prometheus.CounterVec   // vpccni_checkpoint_entries_dropped_total{reason}
}

// New builds the collectors on a fresh registry that also carries the Go and
// process collectors, as upstream's default registry does.
func New(version string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),

		IPAMDErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awscni_ipamd_error_count", Help: "The number of errors encountered in ipamd",
		}, []string{"fn"}),
		ActionInProgress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "awscni_ipamd_action_inprogress", Help: "The number of ipamd actions in progress",
		}, []string{"fn"}),
		ENIMax: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "awscni_eni_max", Help: "The maximum number of ENIs that can be attached to the instance, accounting for unmanaged ENIs",
		}),
		IPMax: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "awscni_ip_max", Help: "The maximum number of IP addresses that can be allocated to the instance",
		}),
		Reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awscni_reconcile_count", Help: "The number of times ipamd reconciled on ENIs and IP/prefix addresses",
		}, []string{"fn"}),
		AddIPRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "awscni_add_ip_req_count", Help: "The number of add IP address requests",
		}),
		DelIPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awscni_del_ip_req_count", Help: "The number of delete IP address requests",
		}, []string{"reason"}),
		PodENIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awscni_pod_eni_error_count", Help: "The number of errors encountered for pod ENIs",
		}, []string{"fn"}),
		AWSAPILatency: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name: "awscni_aws_api_latency_ms", Help: "AWS API call latency in ms",
			Objectives: map[float64]float64{0.5: 0.05, 0.99: 0.001},
		}, []string{"api", "error", "status"}),
		AWSAPIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awscni_aws_api_error_count", Help: "The number of times AWS API returns an error",
		}, []string{"api", "error"}),
		AWSUtilsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awscni_aws_utils_error_count", Help: "The number of errors not handled in awsutils library",
		}, []string{"fn", "error"}),
		EC2Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awscni_ec2api_req_count", Help: "The number of requests made to EC2 APIs by CNI",
		}, []string{"fn"}),
		EC2Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awscni_ec2api_error_count", Help: "The number of failed EC2 APIs requests",
		}, []string{"fn"}),
		ENIAllocated: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "awscni_eni_allocated", Help: "The number of ENIs allocated",
		}),
		TotalIPs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "awscni_total_ip_addresses", Help: "The total number of IP addresses",
		}),
		AssignedIPs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "awscni_assigned_ip_addresses", Help: "The number of IP addresses assigned to pods",
		}),
		ForceRemovedENIs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "awscni_force_removed_enis", Help: "The number of ENIs force removed while they had assigned pods",
		}),
		ForceRemovedIPs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "awscni_force_removed_ips", Help: "The number of IPs force removed while they had assigned pods",
		}),
		TotalIPv4Prefixes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "awscni_total_ipv4_prefixes", Help: "The total number of IPv4 prefixes",
		}),
		AssignedIPPerCIDR: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "awscni_assigned_ip_per_cidr", Help: "The number of IP addresses assigned per CIDR",
		}, []string{"cidr"}),
		NoAvailableIPs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "awscni_no_available_ip_addresses", Help: "The number of pod IP assignments that failed because no address was available",
		}),
		AssignedIPPerENI: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "awscni_assigned_ip_per_eni", Help: "The number of IP addresses assigned per ENI",
		}, []string{"eni"}),
		StartupDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "awscni_ipamd_startup_duration_seconds", Help: "Time from ipamd start until it serves requests",
			Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300},
		}, []string{"success", "with_api_server", "failure_reason"}),
		NodeInitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "awscni_ipamd_node_initialization_duration_seconds", Help: "Time spent initialising the node's ENIs and pool",
			Buckets: []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300},
		}, []string{"success"}),
		ConnmarkBackend: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "awscni_connmark_backend", Help: "The connmark backend in use (1 for the active one)",
		}, []string{"backend"}),
		ConnmarkReconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awscni_connmark_reconcile_total", Help: "The number of connmark rule reconciliations",
		}, []string{"result"}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "awscni_build_info", Help: "Build information",
		}, []string{"version", "goversion"}),

		AddNetworkWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vpccni_add_network_wait_seconds",
			Help:    "How long AddNetwork waited for an address (0 when the pool had one)",
			Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20},
		}, []string{"result"}),
		EC2Calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpccni_ec2_calls_total", Help: "EC2 API calls by action and error code (empty code on success)",
		}, []string{"action", "code"}),
		EC2Throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpccni_ec2_throttles_total", Help: "EC2 API calls answered with a throttling error, by action",
		}, []string{"action"}),
		CoolingIPs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpccni_cooling_ip_addresses", Help: "Addresses released by pods and still in IP_COOLDOWN_PERIOD",
		}),
		PoolActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpccni_pool_actions_total", Help: "Warm-pool actions taken, by action and result",
		}, []string{"action", "result"}),
		OrphanReleases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vpccni_orphaned_addresses_released_total",
			Help: "Addresses released because their pod's host veth was gone for the grace period (a DEL that never reached ipamd)",
		}),
		CheckpointOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vpccni_checkpoint_writable", Help: "1 while the last checkpoint write succeeded, 0 while it fails (health is NOT_SERVING)",
		}),
		RestoreDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vpccni_checkpoint_entries_dropped_total", Help: "Checkpoint entries dropped at or after restore, by reason",
		}, []string{"reason"}),
	}

	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.IPAMDErrors, m.ActionInProgress, m.ENIMax, m.IPMax, m.Reconciles,
		m.AddIPRequests, m.DelIPRequests, m.PodENIErrors, m.AWSAPILatency,
		m.AWSAPIErrors, m.AWSUtilsErrors, m.EC2Requests, m.EC2Errors,
		m.ENIAllocated, m.TotalIPs, m.AssignedIPs, m.ForceRemovedENIs,
		m.ForceRemovedIPs, m.TotalIPv4Prefixes, m.AssignedIPPerCIDR,
		m.NoAvailableIPs, m.AssignedIPPerENI, m.StartupDuration,
		m.NodeInitDuration, m.ConnmarkBackend, m.ConnmarkReconciles, m.BuildInfo,
		m.AddNetworkWait, m.EC2Calls, m.EC2Throttles, m.CoolingIPs, m.PoolActions,
		m.OrphanReleases, m.CheckpointOK, m.RestoreDropped,
	)

	// Label values that exist from the start, as upstream pre-creates them,
	// so dashboards see zeros rather than missing series.
	m.ConnmarkReconciles.WithLabelValues("success")
	m.ConnmarkReconciles.WithLabelValues("error")
	m.BuildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	m.CheckpointOK.Set(1)
	return m
}
