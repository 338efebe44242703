package ipamd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// observed is an IPAM running with Run against vpcsim, serving gRPC,
// metrics on 127.0.0.1:0 and introspection on a unix socket.
type observed struct {
	env       *simtest.Env
	cni       rpc.CNIBackendClient
	metricsAt string // host:port
	introSock string
	http      *http.Client // dials introSock
}

func startObserved(t *testing.T, faults vpcsim.Faults, mut func(*config.Config)) *observed {
	t.Helper()
	env := simtest.Start(t, simtest.Basic())
	if err := env.Sim.SetFaults(faults); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := metrics.New("test")
	acfg := awsutils.Config{
		Region: "us-west-2", EC2Endpoint: env.EC2URL, IMDSEndpoint: env.IMDSURL(simtest.InstanceID),
		Credentials: &awsutils.StaticCredentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		Retry: awsutils.RetryConfig{MaxAttempts: 3, Backoff: awsutils.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond},
			ThrottleBackoff: awsutils.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}},
		DetachPoll: awsutils.Backoff{Base: time.Millisecond, Max: 20 * time.Millisecond},
		Limits:     awsutils.RateLimits{Disabled: true},
		Observer:   m,
	}
	md, err := awsutils.NewMetadata(acfg)
	if err != nil {
		t.Fatal(err)
	}
	ec2, err := awsutils.NewEC2(context.Background(), acfg, md)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.BackingStore = filepath.Join(dir, "ipam.json")
	cfg.SocketPath = filepath.Join(dir, "ipamd.sock")
	if mut != nil {
		mut(&cfg)
	}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &observed{env: env, metricsAt: ml.Addr().String(), introSock: filepath.Join(dir, "introspect.sock")}
	il, err := introspect.Listen("unix:" + o.introSock)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Options{Config: cfg, EC2: ec2, Metadata: md, Subnets: ec2, Leaked: ec2, Host: newFakeHost(),
		Logger: slog.New(slog.DiscardHandler), Times: fastTimes, Metrics: m, MetricsListener: ml, IntrospectionListener: il})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(cfg.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	conn, err := grpc.NewClient("unix://"+cfg.SocketPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	o.cni = rpc.NewCNIBackendClient(conn)
	o.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", o.introSock)
		}}}
	return o
}

// get fetches an introspection path; it returns the status and body.
func (o *observed) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := o.http.Get("http://ipamd" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (o *observed) getJSON(t *testing.T, path string, v any) []byte {
	t.Helper()
	code, b := o.get(t, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: decode: %v\n%s", path, err, b)
	}
	return b
}

// scrape reads /metrics into "name{labels}" → value (histograms and
// summaries appear as their _count, _sum and bucket series).
func (o *observed) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	got, err := testutil.ScrapeMetrics(o.metricsAt)
	if err != nil {
		t.Fatal(err)
	}
	return got.Samples
}

// settle waits until the pool holds free warm addresses and ipamd waits on
// nothing.
func (o *observed) settle(t *testing.T, free int) {
	t.Helper()
	var p introspect.Pool
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		o.getJSON(t, "/v1/pool", &p)
		if len(p.Cards) > 0 && p.Cards[0].Free == free && len(p.WaitingOn) == 0 {
			return
		}
	}
	t.Fatalf("pool did not settle at %d free addresses: %+v", free, p)
}

func (o *observed) addPods(t *testing.T, n int) map[string]string {
	t.Helper()
	ips := map[string]string{}
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := o.cni.AddNetwork(ctx, &rpc.AddNetworkRequest{ContainerId: fmt.Sprintf("cid-%d", i), IfName: "eth0",
			NetworkName: "aws-cni", K8SPodName: fmt.Sprintf("web-%d", i), K8SPodNamespace: "shop"})
		cancel()
		if err != nil {
			t.Fatalf("AddNetwork pod %d: %v", i, err)
		}
		ips[fmt.Sprintf("web-%d", i)] = r.IpAllocationMetadata[0].Ipv4Addr
	}
	return ips
}

// TestIntrospectionAndMetricsOfARunningIPAM: after N pods, /v1/enis shows
// upstream's shape with the pods' addresses (pod names present, container
// IDs blanked) and the ENIs EC2 has attached; /v1/pool agrees; /metrics
// counts the requests, the addresses, the EC2 calls and the throttle vpcsim
// injected.
func TestIntrospectionAndMetricsOfARunningIPAM(t *testing.T) {
	const pods = 5
	o := startObserved(t, vpcsim.Faults{Errors: []vpcsim.ErrorRule{
		{Action: "AssignPrivateIpAddresses", Code: "RequestLimitExceeded", Count: 1},
	}}, func(c *config.Config) { c.WarmIPTarget = 2; c.WarmENITarget = 0 })
	ips := o.addPods(t, pods)
	o.settle(t, 2)

	// /v1/enis: keyed by card, upstream's field names.
	var raw map[string]map[string]json.RawMessage
	body := o.getJSON(t, "/v1/enis", &raw)
	if _, ok := raw["0"]; !ok || len(raw) != 1 {
		t.Fatalf("/v1/enis keys: want only card \"0\":\n%s", body)
	}
	for _, f := range []string{"TotalIPs", "AssignedIPs", "ENIs"} {
		if _, ok := raw["0"][f]; !ok {
			t.Errorf("/v1/enis card 0 lacks %s", f)
		}
	}
	var enis map[int]introspect.CardENIs
	o.getJSON(t, "/v1/enis", &enis)
	card := enis[0]
	if card.AssignedIPs != pods {
		t.Errorf("AssignedIPs = %d, want %d", card.AssignedIPs, pods)
	}
	inst, err := o.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	var simIDs, gotIDs []string
	total := 0
	for _, e := range inst.ENIs {
		simIDs = append(simIDs, e.ID)
		total += len(e.SecondaryIPs)
	}
	for id := range card.ENIs {
		gotIDs = append(gotIDs, id)
	}
	slices.Sort(simIDs)
	slices.Sort(gotIDs)
	if !slices.Equal(simIDs, gotIDs) {
		t.Errorf("/v1/enis ENIs %v, EC2 has %v", gotIDs, simIDs)
	}
	if card.TotalIPs != total {
		t.Errorf("TotalIPs = %d, EC2 lists %d secondary addresses", card.TotalIPs, total)
	}
	found := map[string]bool{}
	for _, e := range card.ENIs {
		for key, c := range e.AvailableIPv4Cidrs {
			if c.IsPrefix || c.Cidr.String() != key || c.AddressFamily != "" {
				t.Errorf("CIDR %s: IsPrefix %v, Cidr %s, AddressFamily %q", key, c.IsPrefix, c.Cidr.String(), c.AddressFamily)
			}
			for ip, a := range c.IPAddresses {
				if a.IPAMKey.ContainerID != "" || a.IPAMKey.IfName != "" {
					t.Errorf("address %s leaks its container: %+v", ip, a.IPAMKey)
				}
				if a.IPAMMetadata.K8SPodName != "" {
					found[a.IPAMMetadata.K8SPodName] = true
					if ips[a.IPAMMetadata.K8SPodName] != ip || a.IPAMKey.NetworkName != "aws-cni" ||
						a.IPAMMetadata.K8SPodNamespace != "shop" || a.AssignedTime.IsZero() {
						t.Errorf("address %s: %+v (pod got %s)", ip, a, ips[a.IPAMMetadata.K8SPodName])
					}
				}
			}
		}
	}
	if len(found) != pods {
		t.Errorf("pods in /v1/enis: %v, want %d", found, pods)
	}
	for _, want := range []string{`"containerID":""`, `"ifName":""`, `"Mask":"/////w=="`, `"k8sPodName":"web-0"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/v1/enis lacks %s", want)
		}
	}

	// /v1/pool agrees.
	var p introspect.Pool
	o.getJSON(t, "/v1/pool", &p)
	if p.Mode != "secondary-ip" || p.Targets.WarmIP != 2 || p.Targets.MaxENI != 3 || len(p.Cards) != 1 {
		t.Fatalf("/v1/pool: %+v", p)
	}
	if c := p.Cards[0]; c.Used != pods || c.Used+c.Free+c.Cooling != total || len(c.ENIs) != len(simIDs) {
		t.Errorf("/v1/pool card: %+v, want %d used of %d", c, pods, total)
	}
	if p.LastAction == "" || p.LastActionTime.IsZero() {
		t.Errorf("/v1/pool has no last action: %+v", p)
	}

	// Env settings and the fallback.
	var ienv map[string]any
	o.getJSON(t, "/v1/ipamd-env-settings", &ienv)
	wantIenv := map[string]any{"WARM_IP_TARGET": 2.0, "WARM_ENI_TARGET": 0.0, "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": false,
		"AWS_MANAGE_ENIS_NON_SCHEDULABLE": false, "ENABLE_SUBNET_DISCOVERY": true}
	if fmt.Sprint(ienv) != fmt.Sprint(wantIenv) {
		t.Errorf("/v1/ipamd-env-settings = %v, want %v", ienv, wantIenv)
	}
	var nenv map[string]any
	o.getJSON(t, "/v1/networkutils-env-settings", &nenv)
	if len(nenv) != 8 || nenv["AWS_VPC_K8S_CNI_RANDOMIZESNAT"] != 2.0 || nenv["AWS_VPC_K8S_CNI_CONNMARK"] != 128.0 ||
		nenv["AWS_VPC_ENI_MTU"] != 9001.0 || nenv["AWS_VPC_K8S_CNI_VETHPREFIX"] != "eni" {
		t.Errorf("/v1/networkutils-env-settings = %v", nenv)
	}
	if code, b := o.get(t, "/v1/eni-configs"); code != http.StatusNotFound {
		t.Errorf("/v1/eni-configs without an API server: %d %s, want 404", code, b)
	}
	var cmds map[string][]string
	o.getJSON(t, "/no/such/path", &cmds)
	if !slices.Contains(cmds["AvailableCommands"], "/v1/enis") || !slices.Contains(cmds["AvailableCommands"], "/v1/pool") {
		t.Errorf("fallback: %v", cmds)
	}

	// Metrics.
	got := o.scrape(t)
	for deadline := time.Now().Add(3 * time.Second); got["awscni_total_ip_addresses"] != float64(total) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond) // the gauges follow at the end of the pool cycle
		got = o.scrape(t)
	}
	want := map[string]func(float64) bool{
		"awscni_add_ip_req_count":      func(v float64) bool { return v == pods },
		"awscni_assigned_ip_addresses": func(v float64) bool { return v == pods },
		"awscni_total_ip_addresses":    func(v float64) bool { return v == float64(total) },
		"awscni_eni_allocated":         func(v float64) bool { return v == float64(len(simIDs)) },
		"awscni_eni_max":               func(v float64) bool { return v == 3 },
		"awscni_ip_max":                func(v float64) bool { return v == 27 }, // m5.large: 3 ENIs × 9 secondaries
		`awscni_ec2api_req_count{fn="AssignPrivateIpAddresses"}`:                  func(v float64) bool { return v > 0 },
		`vpccni_ec2_throttles_total{action="AssignPrivateIpAddresses"}`:           func(v float64) bool { return v == 1 },
		`vpccni_add_network_wait_seconds_count{result="ok"}`:                      func(v float64) bool { return v == pods },
		`vpccni_pool_actions_total{action="assign-ips",result="ok"}`:              func(v float64) bool { return v > 0 },
		`awscni_ipamd_action_inprogress{fn="increaseDatastorePool"}`:              func(v float64) bool { return v == 0 },
		`awscni_ipamd_node_initialization_duration_seconds_count{success="true"}`: func(v float64) bool { return v == 1 },
		`awscni_build_info{goversion="` + goVersion() + `",version="test"}`:       func(v float64) bool { return v == 1 },
	}
	for name, ok := range want {
		v, present := got[name]
		if !present || !ok(v) {
			t.Errorf("metric %s = %v (present %v)", name, v, present)
		}
	}
	perENI := 0.0
	for k, v := range got {
		if strings.HasPrefix(k, "awscni_assigned_ip_per_eni{") {
			perENI += v
		}
	}
	if perENI != pods {
		t.Errorf("awscni_assigned_ip_per_eni sums to %v, want %d", perENI, pods)
	}

	// A DEL is counted by reason, and the gauge follows.
	if _, err := o.cni.DelNetwork(context.Background(), &rpc.DelNetworkRequest{ContainerId: "cid-0", IfName: "eth0",
		NetworkName: "aws-cni", Reason: "PodDeleted"}); err != nil {
		t.Fatal(err)
	}
	got = o.scrape(t)
	if got[`awscni_del_ip_req_count{reason="PodDeleted"}`] != 1 || got["awscni_assigned_ip_addresses"] != pods-1 {
		t.Errorf("after one DEL: del_ip_req_count %v, assigned %v", got[`awscni_del_ip_req_count{reason="PodDeleted"}`],
			got["awscni_assigned_ip_addresses"])
	}
}

func goVersion() string { return runtime.Version() }
