package metrics

import (
	"runtime"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every collector ipamd updates. Create it once with New and
// pass it down; nothing here is global.
type Metrics struct {
	Registry *prometheus.Registry

	// poolMu makes each pool gauge update one step for scrapes (atomic.go).
	poolMu sync.Mutex

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
	AddWaiting     prometheus.Gauge         // vpccni_add_network_waiting
	EC2Calls       *prometheus.CounterVec   // vpccni_ec2_calls_total{action,code}
	EC2Throttles   *prometheus.CounterVec   // vpccni_ec2_throttles_total{action}
	CoolingIPs     prometheus.Gauge         // vpccni_cooling_ip_addresses
	QuarantinedIPs prometheus.Gauge         // vpccni_quarantined_ip_addresses
	PoolActions    *prometheus.CounterVec   // vpccni_pool_actions_total{action,result}
	OrphanReleases prometheus.Counter       // vpccni_orphaned_addresses_released_total
	CheckpointOK   prometheus.Gauge         // vpccni_checkpoint_writable
	RestoreDropped *prometheus.CounterVec   // vpccni_checkpoint_entries_dropped_total{reason}
}

// initBuckets are the start-up and node initialisation buckets, in
// seconds: upstream's (the client's defaults, 5 ms to 10 s), so every
// bucket a dashboard built for upstream reads is there, then longer ones,
// as a start that waits on EC2 takes more than 10 s.
var initBuckets = append(slices.Clone(prometheus.DefBuckets), 20, 30, 60, 120, 300)

// New builds the collectors on a fresh registry that also carries the Go and
// process collectors, as upstream's default registry does.
func New(version string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),

		IPAMDErrors:      NewCounterVec("awscni_ipamd_error_count", "The number of errors encountered in ipamd", "fn"),
		ActionInProgress: NewGaugeVec("awscni_ipamd_action_inprogress", "The number of ipamd actions in progress", "fn"),
		ENIMax:           NewGauge("awscni_eni_max", "The maximum number of ENIs that can be attached to the instance, accounting for unmanaged ENIs"),
		IPMax:            NewGauge("awscni_ip_max", "The maximum number of IP addresses that can be allocated to the instance"),
		Reconciles:       NewCounterVec("awscni_reconcile_count", "The number of times ipamd reconciled on ENIs and IP/prefix addresses", "fn"),
		AddIPRequests:    NewCounter("awscni_add_ip_req_count", "The number of add IP address requests"),
		DelIPRequests:    NewCounterVec("awscni_del_ip_req_count", "The number of delete IP address requests", "reason"),
		PodENIErrors:     NewCounterVec("awscni_pod_eni_error_count", "The number of errors encountered for pod ENIs", "fn"),
		AWSAPILatency: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name: "awscni_aws_api_latency_ms", Help: "AWS API call latency in ms",
			Objectives: map[float64]float64{0.5: 0.05, 0.99: 0.001},
		}, []string{"api", "error", "status"}),
		AWSAPIErrors:      NewCounterVec("awscni_aws_api_error_count", "The number of times AWS API returns an error", "api", "error"),
		AWSUtilsErrors:    NewCounterVec("awscni_aws_utils_error_count", "The number of errors not handled in awsutils library", "fn", "error"),
		EC2Requests:       NewCounterVec("awscni_ec2api_req_count", "The number of requests made to EC2 APIs by CNI", "fn"),
		EC2Errors:         NewCounterVec("awscni_ec2api_error_count", "The number of failed EC2 APIs requests", "fn"),
		ENIAllocated:      NewGauge("awscni_eni_allocated", "The number of ENIs allocated"),
		TotalIPs:          NewGauge("awscni_total_ip_addresses", "The total number of IP addresses"),
		AssignedIPs:       NewGauge("awscni_assigned_ip_addresses", "The number of IP addresses assigned to pods"),
		ForceRemovedENIs:  NewCounter("awscni_force_removed_enis", "The number of ENIs force removed while they had assigned pods"),
		ForceRemovedIPs:   NewCounter("awscni_force_removed_ips", "The number of IPs force removed while they had assigned pods"),
		TotalIPv4Prefixes: NewGauge("awscni_total_ipv4_prefixes", "The total number of IPv4 prefixes"),
		AssignedIPPerCIDR: NewGaugeVec("awscni_assigned_ip_per_cidr", "The number of IP addresses assigned per CIDR", "cidr"),
		NoAvailableIPs:    NewCounter("awscni_no_available_ip_addresses", "The number of pod IP assignments that failed because no address was available"),
		AssignedIPPerENI:  NewGaugeVec("awscni_assigned_ip_per_eni", "The number of IP addresses assigned per ENI", "eni"),
		StartupDuration: NewHistogramVec("awscni_ipamd_startup_duration_seconds", "Time from ipamd start until it serves requests",
			initBuckets, "success", "with_api_server", "failure_reason"),
		NodeInitDuration: NewHistogramVec("awscni_ipamd_node_initialization_duration_seconds", "Time spent initialising the node's ENIs and pool",
			initBuckets, "success"),
		ConnmarkBackend:    NewGaugeVec("awscni_connmark_backend", "The connmark backend in use (1 for the active one)", "backend"),
		ConnmarkReconciles: NewCounterVec("awscni_connmark_reconcile_total", "The number of connmark rule reconciliations", "result"),
		BuildInfo:          NewGaugeVec("awscni_build_info", "Build information", "version", "goversion"),

		AddNetworkWait: NewHistogramVec("vpccni_add_network_wait_seconds", "How long AddNetwork waited for an address (0 when the pool had one)",
			[]float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20}, "result"),
		AddWaiting:     NewGauge("vpccni_add_network_waiting", "AddNetwork calls waiting now for the pool to give them an address"),
		EC2Calls:       NewCounterVec("vpccni_ec2_calls_total", "EC2 API calls by action and error code (empty code on success)", "action", "code"),
		EC2Throttles:   NewCounterVec("vpccni_ec2_throttles_total", "EC2 HTTP attempts answered with a throttling error, by action", "action"),
		CoolingIPs:     NewGauge("vpccni_cooling_ip_addresses", "Addresses released by pods and still in IP_COOLDOWN_PERIOD"),
		QuarantinedIPs: NewGauge("vpccni_quarantined_ip_addresses", "Addresses held for pods that had no DEL though they are on no ENI of the node (EC2 took them away, or restored ones not listed yet); no other pod gets them"),
		PoolActions:    NewCounterVec("vpccni_pool_actions_total", "Warm-pool actions taken, by action and result", "action", "result"),
		OrphanReleases: NewCounter("vpccni_orphaned_addresses_released_total", "Addresses released because their pod's host veth was gone for the grace period (a DEL that never reached ipamd)"),
		CheckpointOK:   NewGauge("vpccni_checkpoint_writable", "1 while the last checkpoint write succeeded, 0 while it fails (health is NOT_SERVING)"),
		RestoreDropped: NewCounterVec("vpccni_checkpoint_entries_dropped_total", "Checkpoint entries dropped at or after restore, by reason", "reason"),
	}

	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.IPAMDErrors, m.ActionInProgress, m.Reconciles,
		m.AddIPRequests, m.DelIPRequests, m.PodENIErrors, m.AWSAPILatency,
		m.AWSAPIErrors, m.AWSUtilsErrors, m.EC2Requests, m.EC2Errors,
		m.ForceRemovedENIs, m.ForceRemovedIPs, m.NoAvailableIPs, m.StartupDuration,
		m.NodeInitDuration, m.ConnmarkBackend, m.ConnmarkReconciles, m.BuildInfo,
		m.AddNetworkWait, m.AddWaiting, m.EC2Calls, m.EC2Throttles, m.PoolActions,
		m.OrphanReleases, m.CheckpointOK, m.RestoreDropped,
		// The pool gauges, set together under LockPool.
		group{mu: &m.poolMu, cs: []prometheus.Collector{m.ENIMax, m.IPMax, m.ENIAllocated, m.TotalIPs, m.AssignedIPs,
			m.CoolingIPs, m.QuarantinedIPs, m.TotalIPv4Prefixes, m.AssignedIPPerCIDR, m.AssignedIPPerENI}},
	)

	// Label values that exist from the start, as upstream pre-creates them,
	// so dashboards see zeros rather than missing series.
	m.ConnmarkReconciles.WithLabelValues("success")
	m.ConnmarkReconciles.WithLabelValues("error")
	m.BuildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	m.CheckpointOK.Set(1)
	return m
}
