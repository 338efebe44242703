package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// scrape is one read of /metrics: every sample by its exposition key
// (`name{label="v",...}`, labels as the text format sorts them) and every
// family's TYPE.
type scrape struct {
	samples map[string]float64
	types   map[string]string
}

func scrapeMetrics(addr string) (scrape, error) {
	got, err := testutil.ScrapeMetrics(addr)
	return scrape{samples: got.Samples, types: got.Types}, err
}

// sum adds the samples of family name (plain series only, not _sum or
// _bucket of another family).
func (s scrape) sum(name string) float64 {
	t := 0.0
	for k, v := range s.samples {
		if k == name || strings.HasPrefix(k, name+"{") {
			t += v
		}
	}
	return t
}

// getJSON decodes the introspection document at path into v.
func getJSON(addr, path string, v any) (int, error) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.Unmarshal(b, v)
}

func keysOf(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// TestProcessMetricsAndIntrospectionAsUpstream runs ipamd against vpcsim
// and reads it as a dashboard built for upstream does
// (docs/compatibility.md, "Metrics" and "Introspection paths"): the
// request counters count every ADD and DEL the plugin sends, a refused
// one too (upstream counts before it looks at the request); the assigned
// gauges and /v1/enis move with ADD and DEL; an EC2 refusal shows in the
// EC2 and ipamd error counters; the introspection documents carry
// upstream's field names.
func TestProcessMetricsAndIntrospectionAsUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	env := simtest.Start(t, simtest.Basic())
	d := simDaemon(t, env, "WARM_IP_TARGET=1", "IP_COOLDOWN_PERIOD=0",
		"VPC_CNI_METRICS_ADDR=127.0.0.1:0", "INTROSPECTION_BIND_ADDRESS=127.0.0.1:0")
	d.start()
	intro, err := d.logAttr("serving introspection", "addr", workingWait)
	if err != nil {
		t.Fatal(err)
	}
	metricsAt, err := d.logAttr("serving metrics", "addr", workingWait)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.logAttr("node initialised", "instance", workingWait); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+filepath.Join(d.dir, "ipamd.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	cni := rpc.NewCNIBackendClient(conn)
	ctx := context.Background()
	add, _ := podCalls(cni, "default")
	del := func(id, reason string) (*rpc.DelNetworkReply, error) {
		return cni.DelNetwork(ctx, &rpc.DelNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni", Reason: reason})
	}
	waitScrape := func(what string, ok func(scrape) bool) scrape {
		t.Helper()
		return waitScrape(t, metricsAt, what, ok)
	}

	addrs := map[string]string{}
	for _, id := range []string{"p0", "p1", "p2"} {
		a, err := add(ctx, id)
		if err != nil {
			t.Fatalf("ADD %s: %v", id, err)
		}
		addrs[id] = a
	}
	// WARM_IP_TARGET=1: the pool refills behind the ADDs.
	s := waitScrape("three pods assigned and one address warm", func(s scrape) bool {
		return s.samples["awscni_assigned_ip_addresses"] == 3 && s.samples["awscni_total_ip_addresses"] >= 4
	})
	// Upstream serves the page through promhttp's default handler, which
	// counts its own scrapes: the ones before this one, which is in flight.
	again := waitScrape("a second scrape", func(scrape) bool { return true })
	if got, inFlight := again.samples[`promhttp_metric_handler_requests_total{code="200"}`], again.samples["promhttp_metric_handler_requests_in_flight"]; got < 1 || inFlight != 1 {
		t.Errorf("promhttp_metric_handler_requests_total{code=\"200\"} %v and _in_flight %v after scrapes, want at least 1 and 1", got, inFlight)
	}
	// The start-up histograms have upstream's buckets (the client's
	// defaults, 5 ms to 10 s), so quantiles over a fleet mixing both agree.
	for _, le := range []string{"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"} {
		for _, k := range []string{
			`awscni_ipamd_startup_duration_seconds_bucket{failure_reason="",success="true",with_api_server="false",le="` + le + `"}`,
			`awscni_ipamd_node_initialization_duration_seconds_bucket{success="true",le="` + le + `"}`,
		} {
			if _, ok := s.samples[k]; !ok {
				t.Errorf("no series %s", k)
			}
		}
	}
	if got := s.samples["awscni_add_ip_req_count"]; got != 3 {
		t.Errorf("awscni_add_ip_req_count %v after 3 ADDs, want 3", got)
	}
	if got, cidrs := s.sum("awscni_assigned_ip_per_eni"), s.sum("awscni_assigned_ip_per_cidr"); got != 3 || cidrs != 3 {
		t.Errorf("assigned per ENI sum to %v and per CIDR to %v after 3 ADDs, want 3", got, cidrs)
	}

	// /v1/enis: upstream's field names, each pod's address under its ENI.
	var enis map[string]struct {
		TotalIPs, AssignedIPs int
		ENIs                  map[string]map[string]json.RawMessage
	}
	if code, err := getJSON(intro, "/v1/enis", &enis); err != nil || code != http.StatusOK {
		t.Fatalf("/v1/enis: %d %v", code, err)
	}
	card, ok := enis["0"]
	if !ok || card.AssignedIPs != 3 || card.TotalIPs < 4 {
		t.Errorf("/v1/enis card 0: TotalIPs %d AssignedIPs %d, want 3 assigned and one more warm", card.TotalIPs, card.AssignedIPs)
	}
	wantENI := sorted("ID", "IsPrimary", "IsTrunk", "IsEFA", "DeviceNumber", "AvailableIPv4Cidrs", "IPv6Cidrs",
		"IsExcludedForPodIPs", "RouteTableID", "SubnetID")
	seen := map[string]bool{}
	for id, e := range card.ENIs {
		if got := keysOf(e); !slices.Equal(got, wantENI) {
			t.Errorf("/v1/enis ENI %s fields %v, want %v", id, got, wantENI)
		}
		var cidrs map[string]map[string]json.RawMessage
		if err := json.Unmarshal(e["AvailableIPv4Cidrs"], &cidrs); err != nil {
			t.Fatalf("ENI %s AvailableIPv4Cidrs: %v", id, err)
		}
		for c, ci := range cidrs {
			if got, want := keysOf(ci), sorted("Cidr", "IPAddresses", "IsPrefix", "AddressFamily"); !slices.Equal(got, want) {
				t.Errorf("/v1/enis CIDR %s fields %v, want %v", c, got, want)
			}
			var ips map[string]struct {
				Address      string
				IPAMKey      map[string]string
				IPAMMetadata map[string]any
			}
			if err := json.Unmarshal(ci["IPAddresses"], &ips); err != nil {
				t.Fatalf("CIDR %s IPAddresses: %v", c, err)
			}
			for ip, a := range ips {
				pod, _ := a.IPAMMetadata["k8sPodName"].(string)
				if pod == "" {
					continue
				}
				seen[pod] = true
				if ip != addrs[pod] || a.Address != ip {
					t.Errorf("/v1/enis lists %s (Address %q) for pod %s, which was given %s", ip, a.Address, pod, addrs[pod])
				}
				if want := map[string]string{"networkName": "aws-cni", "containerID": "", "ifName": ""}; fmt.Sprint(a.IPAMKey) != fmt.Sprint(want) {
					t.Errorf("/v1/enis IPAMKey of %s: %v, want %v (container id and interface blanked)", ip, a.IPAMKey, want)
				}
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("/v1/enis shows pods %v, want p0, p1, p2", seen)
	}

	// DELs as the plugin sends them, and one naming no pod (refused).
	if _, err := del("p0", "PodDeleted"); err != nil {
		t.Fatalf("DEL p0: %v", err)
	}
	if _, err := del("p1", "SetupNSFailed"); err != nil {
		t.Fatalf("DEL p1: %v", err)
	}
	if r, err := cni.DelNetwork(ctx, &rpc.DelNetworkRequest{Reason: "PodDeleted"}); err != nil || r.GetSuccess() {
		t.Fatalf("DEL naming no pod: %v %v, want Success=false", r, err)
	}
	s = waitScrape("one pod left", func(s scrape) bool { return s.samples["awscni_assigned_ip_addresses"] == 1 })
	if got, want := [2]float64{s.samples[`awscni_del_ip_req_count{reason="PodDeleted"}`], s.samples[`awscni_del_ip_req_count{reason="SetupNSFailed"}`]}, [2]float64{2, 1}; got != want {
		t.Errorf("awscni_del_ip_req_count PodDeleted, SetupNSFailed = %v, want %v (every DEL counts, the refused one too)", got, want)
	}
	if got := s.sum("awscni_assigned_ip_per_eni"); got != 1 {
		t.Errorf("assigned per ENI sums to %v with one pod", got)
	}
	if code, err := getJSON(intro, "/v1/enis", &enis); err != nil || code != http.StatusOK || enis["0"].AssignedIPs != 1 {
		t.Errorf("/v1/enis after the DELs: %d %v, card 0 AssignedIPs %d, want 1", code, err, enis["0"].AssignedIPs)
	}

	// EC2 refuses to grow the pool: every pod ADDed takes a warm
	// address, so the pool must ask EC2 for more.
	if err := env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{"AssignPrivateIpAddresses", "CreateNetworkInterface"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, _ = add(actx, fmt.Sprint("q", i)) // served or not: the pool must have asked EC2
		cancel()
	}
	s = waitScrape("the EC2 refusal counted", func(s scrape) bool {
		return s.samples[`awscni_ec2api_error_count{fn="AssignPrivateIpAddresses"}`] >= 1 &&
			s.samples[`awscni_aws_api_error_count{api="AssignPrivateIpAddresses",error="UnauthorizedOperation"}`] >= 1 &&
			s.samples[`awscni_ipamd_error_count{fn="increaseIPPoolAllocIPAddressesFailed"}`] >= 1
	})
	// Upstream names the step that failed, not the pool action.
	for k := range s.samples {
		if strings.HasPrefix(k, "awscni_ipamd_error_count{") && !strings.Contains(k, `fn="increaseIPPool`) {
			t.Errorf("%s: not a value upstream gives awscni_ipamd_error_count when growing the pool", k)
		}
	}
	if req, bad := s.samples[`awscni_ec2api_req_count{fn="AssignPrivateIpAddresses"}`], s.samples[`awscni_ec2api_error_count{fn="AssignPrivateIpAddresses"}`]; req < bad {
		t.Errorf("awscni_ec2api_req_count{AssignPrivateIpAddresses} %v below its error count %v", req, bad)
	}
	for name, kind := range map[string]string{
		"awscni_add_ip_req_count": "counter", "awscni_del_ip_req_count": "counter", "awscni_assigned_ip_addresses": "gauge",
		"awscni_total_ip_addresses": "gauge", "awscni_assigned_ip_per_eni": "gauge", "awscni_assigned_ip_per_cidr": "gauge",
		"awscni_ec2api_req_count": "counter", "awscni_ec2api_error_count": "counter", "awscni_aws_api_error_count": "counter",
		"awscni_aws_api_latency_ms": "summary", "awscni_ipamd_error_count": "counter", "awscni_eni_allocated": "gauge",
		"awscni_eni_max": "gauge", "awscni_ip_max": "gauge", "awscni_total_ipv4_prefixes": "gauge",
		"awscni_ipamd_action_inprogress": "gauge", "awscni_build_info": "gauge",
		"promhttp_metric_handler_requests_total": "counter", "promhttp_metric_handler_requests_in_flight": "gauge",
	} {
		if s.types[name] != kind {
			t.Errorf("scrape: %s has TYPE %q, want %s", name, s.types[name], kind)
		}
	}

	// The other documents: exactly upstream's keys.
	for path, want := range map[string][]string{
		"/v1/networkutils-env-settings": sorted("AWS_VPC_K8S_CNI_CONNMARK", "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "AWS_VPC_K8S_CNI_EXTERNALSNAT",
			"AWS_EXTERNAL_SERVICE_CIDRS", "AWS_VPC_ENI_MTU", "AWS_VPC_K8S_CNI_VETHPREFIX", "AWS_VPC_CNI_NODE_PORT_SUPPORT", "AWS_VPC_K8S_CNI_RANDOMIZESNAT"),
		"/v1/ipamd-env-settings": sorted("WARM_IP_TARGET", "WARM_ENI_TARGET", "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG",
			"AWS_MANAGE_ENIS_NON_SCHEDULABLE", "ENABLE_SUBNET_DISCOVERY"),
	} {
		var doc map[string]json.RawMessage
		if code, err := getJSON(intro, path, &doc); err != nil || code != http.StatusOK {
			t.Errorf("%s: %d %v", path, code, err)
		} else if got := keysOf(doc); !slices.Equal(got, want) {
			t.Errorf("%s keys %v, want %v", path, got, want)
		}
	}
	var ipamdEnv struct {
		WarmIP int `json:"WARM_IP_TARGET"`
	}
	if _, err := getJSON(intro, "/v1/ipamd-env-settings", &ipamdEnv); err != nil || ipamdEnv.WarmIP != 1 {
		t.Errorf("/v1/ipamd-env-settings WARM_IP_TARGET %d (%v), want 1", ipamdEnv.WarmIP, err)
	}
	if code, _ := getJSON(intro, "/v1/eni-configs", new(string)); code != http.StatusNotFound {
		t.Errorf("/v1/eni-configs without the API server: %d, want 404", code)
	}
	var cmds struct{ AvailableCommands []string }
	if _, err := getJSON(intro, "/v1/no-such-path", &cmds); err != nil ||
		!slices.Equal(cmds.AvailableCommands[:min(4, len(cmds.AvailableCommands))], []string{"/v1/enis", "/v1/eni-configs", "/v1/networkutils-env-settings", "/v1/ipamd-env-settings"}) {
		t.Errorf("unknown path: AvailableCommands %v (%v), want upstream's four paths first", cmds.AvailableCommands, err)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}

// TestProcessPortsTakenAtStart: another process holds the metrics and
// introspection ports when ipamd starts (an old aws-node still stopping,
// say). ipamd serves pods all the same, as upstream does, and serves
// /metrics and /v1/enis on those ports once they are free.
func TestProcessPortsTakenAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	env := simtest.Start(t, simtest.Basic())
	var held []net.Listener
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		t.Cleanup(func() { _ = l.Close() })
	}
	metricsAt, intro := held[0].Addr().String(), held[1].Addr().String()
	d := simDaemon(t, env, "VPC_CNI_METRICS_ADDR="+metricsAt, "INTROSPECTION_BIND_ADDRESS="+intro)
	d.start()
	if _, err := d.logAttr("node initialised", "instance", workingWait); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+filepath.Join(d.dir, "ipamd.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	add, _ := podCalls(rpc.NewCNIBackendClient(conn), "default")
	actx, cancel := context.WithTimeout(context.Background(), workingWait)
	defer cancel()
	if _, err := add(actx, "p0"); err != nil {
		t.Fatalf("ADD while the metrics and introspection ports are taken: %v\n%s", err, d.log(d.runs))
	}
	for _, l := range held {
		_ = l.Close()
	}
	if err := poll.Until(context.Background(), workingWait, func() error {
		var enis map[string]struct{ AssignedIPs int }
		s, err := scrapeMetrics(metricsAt)
		if err == nil {
			_, err = getJSON(intro, "/v1/enis", &enis)
		}
		if err == nil && s.samples["awscni_assigned_ip_addresses"] == 1 && enis["0"].AssignedIPs == 1 {
			return nil
		}
		return fmt.Errorf("metrics %v, /v1/enis %v, err %v", s.samples["awscni_assigned_ip_addresses"], enis, err)
	}); err != nil {
		t.Fatalf("ports freed, but ipamd does not serve them: %v\n%s", err, d.log(d.runs))
	}
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}

// waitScrape reads /metrics at addr until ok accepts it, and fails the
// test naming what it waited for when ok never does.
func waitScrape(t *testing.T, addr, what string, ok func(scrape) bool) scrape {
	t.Helper()
	var s scrape
	if err := poll.Until(context.Background(), workingWait, func() error {
		var err error
		if s, err = scrapeMetrics(addr); err != nil {
			return err
		}
		if !ok(s) {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("/metrics never showed %s (%v); samples:\n%v", what, err, s.samples)
	}
	return s
}

// waitUtilsError waits for the awscni_aws_utils_error_count series want,
// failing with the utils and EC2 error series /metrics had instead.
func waitUtilsError(t *testing.T, addr, want, after string) {
	t.Helper()
	waitScrape(t, addr, want+" after "+after, func(s scrape) bool { return s.samples[want] >= 1 })
}

// startScraped starts ipamd against env with its metrics on a free port
// and the extra environment, and returns it with the metrics address.
func startScraped(t *testing.T, env *simtest.Env, extra ...string) (*daemon, string) {
	t.Helper()
	d := simDaemon(t, env, append([]string{"VPC_CNI_METRICS_ADDR=127.0.0.1:0"}, extra...)...)
	d.start()
	metricsAt, err := d.logAttr("serving metrics", "addr", workingWait)
	if err != nil {
		t.Fatal(err)
	}
	return d, metricsAt
}
