package resourcecontroller

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// metricValue reads one series from the controller's registry: a counter's
// or gauge's value, a summary's sample count; 0 when absent.
func metricValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Summary != nil:
				return float64(m.Summary.GetSampleCount())
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// metricSeries names the series a flow moves, with EKS's names and labels.
type metricSeries struct {
	name   string
	labels map[string]string
}

var sgpFlowSeries = []metricSeries{
	{"branch_provider_operation_latency", map[string]string{"branch_provider_operation": "init_trunk", "resource_count": "1"}},
	{"branch_provider_operation_latency", map[string]string{"branch_provider_operation": "create_branch_eni", "resource_count": "1"}},
	{"branch_provider_operation_latency", map[string]string{"branch_provider_operation": "annotate_branch_eni", "resource_count": "1"}},
	{"annotate_pod_request_call_count", map[string]string{"annotate_key": PodENIAnnotation}},
	{"advertise_resource_request_call_count", map[string]string{"resource_name": PodENIResource}},
	{"branch_eni_opeartions_success_count", map[string]string{"operation": branchOpDeleteCooled}},
}

func readSeries(t *testing.T) []float64 {
	out := make([]float64, len(sgpFlowSeries))
	for i, s := range sgpFlowSeries {
		out[i] = metricValue(t, s.name, s.labels)
	}
	return out
}

// checkSeriesGrew fails for every series of sgpFlowSeries that did not grow
// by at least one since before.
func checkSeriesGrew(t *testing.T, before []float64) {
	t.Helper()
	after := readSeries(t)
	for i, s := range sgpFlowSeries {
		if after[i] < before[i]+1 {
			t.Errorf("metric %s%v: %v before, %v after one trunk, branch, annotation and cooled delete", s.name, s.labels, before[i], after[i])
		}
	}
	if v := metricValue(t, "sgp_enabled", nil); v != 1 {
		t.Errorf("sgp_enabled = %v, want 1", v)
	}
}
