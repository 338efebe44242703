package resourcecontroller

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/vpc-cni/vpc-cni/pkg/metrics"
)

// The controller's metrics, on controller-runtime's registry (served at the
// manager's metrics address), under EKS's names and labels so existing
// dashboards keep working (docs/compatibility.md, "Security groups for
// pods"). "opeartions" is misspelled in EKS's names and so here.
var (
	metricSGPEnabled = metrics.NewGauge("sgp_enabled", "1 when the security-groups-for-pods controller runs")
	metricOpLatency  = prometheus.NewSummaryVec(prometheus.SummaryOpts{
		Name: "branch_provider_operation_latency", Help: "Seconds taken by a branch provider operation",
	}, []string{"branch_provider_operation", "resource_count"})
	metricOpErrors        = metrics.NewCounterVec("branch_provider_operations_err_count", "Failed branch provider operations", "branch_provider_operation")
	metricBranchOK        = metrics.NewCounterVec("branch_eni_opeartions_success_count", "Branch ENI operations that succeeded", "operation")
	metricBranchFailed    = metrics.NewCounterVec("branch_eni_opeartions_failure_count", "Branch ENI operations that failed", "operation")
	metricTrunkErrors     = metrics.NewCounterVec("trunk_eni_operations_err_count", "Failed trunk ENI operations", "operation")
	metricAnnotate        = metrics.NewCounterVec("annotate_pod_request_call_count", "Pod annotation requests", "annotate_key")
	metricAnnotateErrors  = metrics.NewCounterVec("annotate_pod_request_err_count", "Failed pod annotation requests", "annotate_key")
	metricAdvertise       = metrics.NewCounterVec("advertise_resource_request_call_count", "Node capacity advertisements", "resource_name")
	metricAdvertiseErrors = metrics.NewCounterVec("advertise_resource_request_err_count", "Failed node capacity advertisements", "resource_name")
	// The cluster cleaner's, set each pass (clustercleaner.go).
	metricRCAvailableENIs   = metrics.NewGauge("vpc_rc_created_available_eni_count", "Available ENIs of the cluster made by the resource controller, at the last cleaner pass")
	metricCNIAvailableENIs  = metrics.NewGauge("vpc_cni_created_available_eni_count", "Available ENIs of the cluster made by the VPC CNI, at the last cleaner pass")
	metricNodeCleanFailures = metrics.NewCounter("node_termination_eni_cleanup_failures_total", "Failed cleanups of a deleted node's ENIs")
	metricLeakedENIs        = metrics.NewGauge("leaked_eni_count", "ENIs of the cluster available in two cleaner passes in a row, whose delete the last pass tried")
)

// Branch provider operations (EKS's label values).
const (
	opInitTrunk    = "init_trunk"
	opCreateBranch = "create_branch_eni"
	opAnnotate     = "annotate_branch_eni"
)

// Branch ENI operations: leaked_branch_enis is EKS's; the others are ours.
const (
	branchOpLeaked       = "leaked_branch_enis"
	branchOpDeleteCooled = "delete_cooled_branch_eni"
	branchOpDeleteOrphan = "delete_orphan_branch_eni"
)

func init() {
	ctrlmetrics.Registry.MustRegister(metricSGPEnabled, metricOpLatency, metricOpErrors, metricBranchOK,
		metricBranchFailed, metricTrunkErrors, metricAnnotate, metricAnnotateErrors, metricAdvertise, metricAdvertiseErrors,
		metricRCAvailableENIs, metricCNIAvailableENIs, metricLeakedENIs, metricNodeCleanFailures)
}

// observeOp records one branch provider operation's time and outcome.
func observeOp(op string, count int, start time.Time, err error) {
	metricOpLatency.WithLabelValues(op, strconv.Itoa(count)).Observe(time.Since(start).Seconds())
	if err != nil {
		metricOpErrors.WithLabelValues(op).Inc()
	}
}

// countBranchOp counts one branch ENI operation's outcome.
func countBranchOp(op string, err error) {
	if err != nil {
		metricBranchFailed.WithLabelValues(op).Inc()
		return
	}
	metricBranchOK.WithLabelValues(op).Inc()
}
