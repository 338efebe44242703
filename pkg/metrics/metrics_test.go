package metrics

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// upstreamMetrics is reference §7.2: name → type and label names. Dashboards
// and the cni-metrics-helper depend on exactly these.
var upstreamMetrics = map[string]struct {
	kind   dto.MetricType
	labels []string
}{
	"awscni_ipamd_error_count":                          {dto.MetricType_COUNTER, []string{"fn"}},
	"awscni_ipamd_action_inprogress":                    {dto.MetricType_GAUGE, []string{"fn"}},
	"awscni_eni_max":                                    {dto.MetricType_GAUGE, nil},
	"awscni_ip_max":                                     {dto.MetricType_GAUGE, nil},
	"awscni_reconcile_count":                            {dto.MetricType_COUNTER, []string{"fn"}},
	"awscni_add_ip_req_count":                           {dto.MetricType_COUNTER, nil},
	"awscni_del_ip_req_count":                           {dto.MetricType_COUNTER, []string{"reason"}},
	"awscni_pod_eni_error_count":                        {dto.MetricType_COUNTER, []string{"fn"}},
	"awscni_aws_api_latency_ms":                         {dto.MetricType_SUMMARY, []string{"api", "error", "status"}},
	"awscni_aws_api_error_count":                        {dto.MetricType_COUNTER, []string{"api", "error"}},
	"awscni_aws_utils_error_count":                      {dto.MetricType_COUNTER, []string{"error", "fn"}},
	"awscni_ec2api_req_count":                           {dto.MetricType_COUNTER, []string{"fn"}},
	"awscni_ec2api_error_count":                         {dto.MetricType_COUNTER, []string{"fn"}},
	"awscni_eni_allocated":                              {dto.MetricType_GAUGE, nil},
	"awscni_total_ip_addresses":                         {dto.MetricType_GAUGE, nil},
	"awscni_assigned_ip_addresses":                      {dto.MetricType_GAUGE, nil},
	"awscni_force_removed_enis":                         {dto.MetricType_COUNTER, nil},
	"awscni_force_removed_ips":                          {dto.MetricType_COUNTER, nil},
	"awscni_total_ipv4_prefixes":                        {dto.MetricType_GAUGE, nil},
	"awscni_assigned_ip_per_cidr":                       {dto.MetricType_GAUGE, []string{"cidr"}},
	"awscni_no_available_ip_addresses":                  {dto.MetricType_COUNTER, nil},
	"awscni_assigned_ip_per_eni":                        {dto.MetricType_GAUGE, []string{"eni"}},
	"awscni_ipamd_startup_duration_seconds":             {dto.MetricType_HISTOGRAM, []string{"failure_reason", "success", "with_api_server"}},
	"awscni_ipamd_node_initialization_duration_seconds": {dto.MetricType_HISTOGRAM, []string{"success"}},
	"awscni_connmark_backend":                           {dto.MetricType_GAUGE, []string{"backend"}},
	"awscni_connmark_reconcile_total":                   {dto.MetricType_COUNTER, []string{"result"}},
	"awscni_build_info":                                 {dto.MetricType_GAUGE, []string{"goversion", "version"}},
}

// touch gives every labelled metric one series so Gather reports it.
func touch(m *Metrics) {
	m.IPAMDErrors.WithLabelValues("x").Inc()
	m.ActionInProgress.WithLabelValues("nodeInit").Set(0)
	m.Reconciles.WithLabelValues("eniReconcileAdd").Inc()
	m.DelIPRequests.WithLabelValues("PodDeleted").Inc()
	m.PodENIErrors.WithLabelValues("x").Inc()
	m.ObserveEC2Call("AssignPrivateIpAddresses", 20*time.Millisecond, "RequestLimitExceeded", true)
	m.AWSUtilsErrors.WithLabelValues("x", "y").Inc()
	m.AssignedIPPerCIDR.WithLabelValues("10.0.0.5/32").Set(1)
	m.AssignedIPPerENI.WithLabelValues("eni-1").Set(1)
	m.StartupDuration.WithLabelValues("true", "false", "").Observe(1)
	m.NodeInitDuration.WithLabelValues("true").Observe(1)
	m.ConnmarkBackend.WithLabelValues("nftables").Set(1)
	m.AddNetworkWait.WithLabelValues("ok").Observe(0)
	m.PoolActions.WithLabelValues("assign-ips", "ok").Inc()
}

func TestUpstreamNamesTypesAndLabels(t *testing.T) {
	m := New("v-test")
	touch(m)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, f := range families {
		got[f.GetName()] = f
	}
	for name, want := range upstreamMetrics {
		f, ok := got[name]
		if !ok {
			t.Errorf("metric %s missing", name)
			continue
		}
		if f.GetType() != want.kind {
			t.Errorf("metric %s: type %v, want %v", name, f.GetType(), want.kind)
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		sort.Strings(labels)
		if strings.Join(labels, ",") != strings.Join(want.labels, ",") {
			t.Errorf("metric %s: labels %v, want %v", name, labels, want.labels)
		}
	}
	for _, ours := range []string{"vpccni_add_network_wait_seconds", "vpccni_ec2_calls_total", "vpccni_ec2_throttles_total"} {
		if _, ok := got[ours]; !ok {
			t.Errorf("our metric %s missing", ours)
		}
	}
}

// TestListMatchesReference keeps upstreamMetrics honest: every awscni_ name
// in the reference's metrics table is in the list and vice versa. The
// reference lives beside the repository (../shared) on developer machines
// and in CI.
func TestListMatchesReference(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "reference", "upstream-behaviour.md")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("reference not beside the repository (%v)", err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `(awscni_[a-z0-9_]+)` \\|")
	inRef := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if m := row.FindStringSubmatch(s.Text()); m != nil {
			inRef[m[1]] = true
		}
	}
	if len(inRef) < 20 {
		t.Fatalf("found only %d metric rows in %s; has the table moved?", len(inRef), path)
	}
	for name := range inRef {
		if _, ok := upstreamMetrics[name]; !ok {
			t.Errorf("reference lists %s; we do not export it", name)
		}
	}
	for name := range upstreamMetrics {
		if !inRef[name] {
			t.Errorf("we check %s but the reference does not list it", name)
		}
	}
}

func TestServeExposesMetrics(t *testing.T) {
	m := New("v-test")
	m.AddIPRequests.Inc()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.ServeListener(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "awscni_add_ip_req_count 1") {
		t.Errorf("metrics page lacks awscni_add_ip_req_count 1:\n%.2000s", body)
	}
	if !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("metrics page lacks the Go collector")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
