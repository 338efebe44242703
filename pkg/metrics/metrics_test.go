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

// upstreamMetrics are upstream's metrics (docs/compatibility.md, "Metrics"):
// name → type and label names. Dashboards and the cni-metrics-helper
// depend on exactly these.
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
	m.ObserveEC2Call("AssignPrivateIpAddresses", 20*time.Millisecond, "RequestLimitExceeded")
	m.ObserveEC2Attempt("AssignPrivateIpAddresses", 20*time.Millisecond, "RequestLimitExceeded", true)
	m.AWSUtilsErrors.WithLabelValues("x", "y").Inc()
	m.AssignedIPPerCIDR.WithLabelValues("10.0.0.5/32").Set(1)
	m.AssignedIPPerENI.WithLabelValues("eni-1").Set(1)
	m.StartupDuration.WithLabelValues("true", "false", "").Observe(1)
	m.NodeInitDuration.WithLabelValues("true").Observe(1)
	m.ConnmarkBackend.WithLabelValues("nftables").Set(1)
	m.AddNetworkWait.WithLabelValues("ok").Observe(0)
	m.PoolActions.WithLabelValues("assign-ips", "ok").Inc()
	m.RestoreDropped.WithLabelValues("key_less").Inc()
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

// docMetric is one row of the metrics table in docs/compatibility.md.
type docMetric struct {
	kind   string // counter, gauge, histogram, summary
	labels string // sorted label names joined by ","; "" for none
}

// readDocMetrics parses the "Metrics" table of docs/compatibility.md:
// | `name` | type | label, label | meaning |
func readDocMetrics(t *testing.T) map[string]docMetric {
	t.Helper()
	path := filepath.Join("..", "..", "docs", "compatibility.md")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open the compatibility document: %v", err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `((?:awscni|vpccni)_[a-z0-9_]+)` \\| ([a-z]+) \\| ([^|]*) \\|")
	out := map[string]docMetric{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		m := row.FindStringSubmatch(s.Text())
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.TrimSpace(l); l != "" && l != "—" {
				labels = append(labels, l)
			}
		}
		sort.Strings(labels)
		if _, dup := out[m[1]]; dup {
			t.Errorf("%s lists %s twice", path, m[1])
		}
		out[m[1]] = docMetric{kind: m[2], labels: strings.Join(labels, ",")}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(out) < 30 {
		t.Fatalf("found only %d metric rows in %s; has the table moved?", len(out), path)
	}
	return out
}

var kindNames = map[dto.MetricType]string{
	dto.MetricType_COUNTER: "counter", dto.MetricType_GAUGE: "gauge",
	dto.MetricType_HISTOGRAM: "histogram", dto.MetricType_SUMMARY: "summary",
}

// TestMetricsTableMatchesRegistry keeps the metrics table of
// docs/compatibility.md, "Metrics", and the registry in step: every row is
// exported with its type and labels, every awscni_/vpccni_ family we export
// has a row, and the awscni_ rows are exactly upstreamMetrics.
func TestMetricsTableMatchesRegistry(t *testing.T) {
	doc := readDocMetrics(t)
	m := New("v-test")
	touch(m)
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]docMetric{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "awscni_") && !strings.HasPrefix(f.GetName(), "vpccni_") {
			continue
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		sort.Strings(labels)
		got[f.GetName()] = docMetric{kind: kindNames[f.GetType()], labels: strings.Join(labels, ",")}
	}
	for name, want := range doc {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("docs/compatibility.md lists %s; we do not export it", name)
		case g != want:
			t.Errorf("%s: exported as %s with labels [%s]; the document says %s with [%s]", name, g.kind, g.labels, want.kind, want.labels)
		}
	}
	for name := range got {
		if _, ok := doc[name]; !ok {
			t.Errorf("we export %s but docs/compatibility.md does not list it", name)
		}
	}
	for name := range upstreamMetrics {
		if _, ok := doc[name]; !ok {
			t.Errorf("upstream metric %s is missing from docs/compatibility.md", name)
		}
	}
	for name := range doc {
		if _, ok := upstreamMetrics[name]; strings.HasPrefix(name, "awscni_") && !ok {
			t.Errorf("docs/compatibility.md lists %s as upstream's; upstreamMetrics does not", name)
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
