package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type staticSource struct {
	enis    map[int]CardENIs
	eniCfg  string
	cfgErr  error
	netEnv  NetworkEnv
	ipamEnv IPAMDEnv
	pool    Pool
}

func (s staticSource) ENIs() map[int]CardENIs { return s.enis }
func (s staticSource) ENIConfigName(context.Context) (string, error) {
	return s.eniCfg, s.cfgErr
}
func (s staticSource) NetworkEnv() NetworkEnv { return s.netEnv }
func (s staticSource) IPAMDEnv() IPAMDEnv     { return s.ipamEnv }
func (s staticSource) Pool() Pool             { return s.pool }

func sample() staticSource {
	assigned := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	_, secondary, _ := net.ParseCIDR("10.0.0.5/32")
	return staticSource{
		enis: map[int]CardENIs{0: {
			TotalIPs: 9, AssignedIPs: 1,
			ENIs: map[string]ENI{"eni-0a": {
				ID: "eni-0a", IsPrimary: true, DeviceNumber: 0, RouteTableID: 254, SubnetID: "subnet-1",
				AvailableIPv4Cidrs: map[string]CIDR{"10.0.0.5/32": {
					Cidr: *secondary, AddressFamily: "4",
					IPAddresses: map[string]Address{"10.0.0.5": {
						Address:      "10.0.0.5",
						IPAMKey:      IPAMKey{NetworkName: "aws-cni"},
						IPAMMetadata: IPAMMetadata{K8SPodNamespace: "default", K8SPodName: "web-1", InterfacesCount: 1},
						AssignedTime: assigned,
					}},
				}},
				IPv6Cidrs: map[string]CIDR{},
			}},
		}},
		eniCfg:  "us-west-2a",
		netEnv:  NetworkEnv{Connmark: 0x80, MTU: 9001, VethPrefix: "eni", NodePortSupport: true, RandomizeSNAT: RandomizePRNG},
		ipamEnv: IPAMDEnv{WarmENITarget: 1, SubnetDiscovery: true},
	}
}

func get(t *testing.T, h http.Handler, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.Bytes()
}

// keys returns the sorted keys of a JSON object.
func keys(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("want a JSON object, got %T", v)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestENIsShape(t *testing.T) {
	code, body := get(t, Handler(sample(), slog.New(slog.DiscardHandler)), "/v1/enis")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	card := doc["0"]
	if diff := cmp.Diff([]string{"AssignedIPs", "ENIs", "TotalIPs"}, keys(t, card)); diff != "" {
		t.Errorf("card keys (-want +got):\n%s", diff)
	}
	eni := card.(map[string]any)["ENIs"].(map[string]any)["eni-0a"]
	wantENI := []string{"AvailableIPv4Cidrs", "DeviceNumber", "ID", "IPv6Cidrs", "IsEFA", "IsExcludedForPodIPs", "IsPrimary", "IsTrunk", "RouteTableID", "SubnetID"}
	if diff := cmp.Diff(wantENI, keys(t, eni)); diff != "" {
		t.Errorf("ENI keys (-want +got):\n%s", diff)
	}
	cidr := eni.(map[string]any)["AvailableIPv4Cidrs"].(map[string]any)["10.0.0.5/32"]
	if diff := cmp.Diff([]string{"AddressFamily", "Cidr", "IPAddresses", "IsPrefix"}, keys(t, cidr)); diff != "" {
		t.Errorf("CIDR keys (-want +got):\n%s", diff)
	}
	ipnet := cidr.(map[string]any)["Cidr"].(map[string]any)
	if ipnet["IP"] != "10.0.0.5" || ipnet["Mask"] != "/////w==" {
		t.Errorf("Cidr = %v, want IP 10.0.0.5 and base64 mask /////w==", ipnet)
	}
	addr := cidr.(map[string]any)["IPAddresses"].(map[string]any)["10.0.0.5"]
	if diff := cmp.Diff([]string{"Address", "AssignedTime", "IPAMKey", "IPAMMetadata", "UnassignedTime"}, keys(t, addr)); diff != "" {
		t.Errorf("address keys (-want +got):\n%s", diff)
	}
	key := addr.(map[string]any)["IPAMKey"]
	if diff := cmp.Diff([]string{"containerID", "ifName", "networkName"}, keys(t, key)); diff != "" {
		t.Errorf("IPAMKey keys (-want +got):\n%s", diff)
	}
	meta := addr.(map[string]any)["IPAMMetadata"]
	if diff := cmp.Diff([]string{"interfacesCount", "k8sPodName", "k8sPodNamespace"}, keys(t, meta)); diff != "" {
		t.Errorf("IPAMMetadata keys (-want +got):\n%s", diff)
	}
}

func TestEnvSettingsShapes(t *testing.T) {
	h := Handler(sample(), slog.New(slog.DiscardHandler))
	for path, want := range map[string][]string{
		"/v1/networkutils-env-settings": {"AWS_EXTERNAL_SERVICE_CIDRS", "AWS_VPC_CNI_NODE_PORT_SUPPORT", "AWS_VPC_ENI_MTU", "AWS_VPC_K8S_CNI_CONNMARK", "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "AWS_VPC_K8S_CNI_EXTERNALSNAT", "AWS_VPC_K8S_CNI_RANDOMIZESNAT", "AWS_VPC_K8S_CNI_VETHPREFIX"},
		"/v1/ipamd-env-settings":        {"AWS_MANAGE_ENIS_NON_SCHEDULABLE", "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", "ENABLE_SUBNET_DISCOVERY", "WARM_ENI_TARGET", "WARM_IP_TARGET"},
	} {
		code, body := get(t, h, path)
		if code != http.StatusOK {
			t.Fatalf("%s: status %d", path, code)
		}
		var doc any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: decode: %v", path, err)
		}
		if diff := cmp.Diff(want, keys(t, doc)); diff != "" {
			t.Errorf("%s keys (-want +got):\n%s", path, diff)
		}
	}
	_, body := get(t, h, "/v1/networkutils-env-settings")
	if !strings.Contains(string(body), `"AWS_VPC_K8S_CNI_RANDOMIZESNAT":2`) || !strings.Contains(string(body), `"AWS_VPC_K8S_CNI_CONNMARK":128`) {
		t.Errorf("randomize/connmark not numeric as upstream: %s", body)
	}
}

func TestENIConfigAndFallback(t *testing.T) {
	src := sample()
	h := Handler(src, slog.New(slog.DiscardHandler))
	if code, body := get(t, h, "/v1/eni-configs"); code != http.StatusOK || string(body) != `"us-west-2a"` {
		t.Errorf("/v1/eni-configs = %d %s, want 200 \"us-west-2a\"", code, body)
	}
	src.cfgErr = errors.New("get node ip-10-0-0-1: not found")
	if code, _ := get(t, Handler(src, slog.New(slog.DiscardHandler)), "/v1/eni-configs"); code != http.StatusNotFound {
		t.Errorf("/v1/eni-configs with unreadable node = %d, want 404", code)
	}
	code, body := get(t, h, "/nope")
	var doc struct{ AvailableCommands []string }
	if err := json.Unmarshal(body, &doc); err != nil || code != http.StatusOK {
		t.Fatalf("fallback = %d %s (%v)", code, body, err)
	}
	for _, p := range upstreamPaths {
		if !strings.Contains(strings.Join(doc.AvailableCommands, " "), p) {
			t.Errorf("AvailableCommands %v lacks %s", doc.AvailableCommands, p)
		}
	}
}

func TestServeTCPAndUnix(t *testing.T) {
	for _, bind := range []string{"127.0.0.1:0", "unix:" + filepath.Join(t.TempDir(), "introspect.sock")} {
		ln, err := Listen(bind)
		if err != nil {
			t.Fatalf("listen %s: %v", bind, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Serve(ctx, ln, sample(), slog.New(slog.DiscardHandler)) }()
		client := &http.Client{}
		url := "http://" + ln.Addr().String() + "/v1/ipamd-env-settings"
		if ln.Addr().Network() == "unix" {
			path := ln.Addr().String()
			client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", path)
			}}
			url = "http://unix/v1/ipamd-env-settings"
		}
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("%s: get: %v", bind, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"WARM_ENI_TARGET":1`) {
			t.Errorf("%s: body %s", bind, body)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: serve: %v", bind, err)
		}
	}
	if _, err := Listen("unix:"); err == nil || !strings.Contains(err.Error(), "INTROSPECTION_BIND_ADDRESS") {
		t.Errorf("empty unix path: err = %v, want one naming INTROSPECTION_BIND_ADDRESS", err)
	}
}

func TestTrackerOrdersAndEnds(t *testing.T) {
	now := time.Unix(100, 0)
	tr := NewTracker(func() time.Time { return now })
	endA := tr.Begin("ec2", "AttachNetworkInterface eni-1")
	now = now.Add(time.Second)
	endB := tr.Begin("imds", "wait for eni-1 in metadata")
	got := tr.Current()
	if len(got) != 2 || got[0].Kind != "ec2" || got[1].Kind != "imds" {
		t.Fatalf("Current = %+v", got)
	}
	endA()
	endA()
	if got := tr.Current(); len(got) != 1 || got[0].Kind != "imds" {
		t.Fatalf("after end: %+v", got)
	}
	endB()
	if got := tr.Current(); len(got) != 0 {
		t.Fatalf("after both ended: %+v", got)
	}
}

// TestUnsetCIDRsRenderNull: unset CIDR variables are null, as upstream
// renders them; set ones are lists.
func TestUnsetCIDRsRenderNull(t *testing.T) {
	for _, tc := range []struct {
		name    string
		exclude CIDRList
		service CIDRList
		want    []string
	}{
		{"unset", nil, nil, []string{`"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS":null`, `"AWS_EXTERNAL_SERVICE_CIDRS":null`}},
		{"empty, not nil", CIDRList{}, []string{}, []string{`"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS":null`, `"AWS_EXTERNAL_SERVICE_CIDRS":null`}},
		{"set", CIDRList{"10.1.0.0/16"}, []string{"192.0.2.0/24", "198.51.100.0/24"},
			[]string{`"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS":["10.1.0.0/16"]`, `"AWS_EXTERNAL_SERVICE_CIDRS":["192.0.2.0/24","198.51.100.0/24"]`}},
	} {
		src := sample()
		src.netEnv.ExcludeSNATCIDRs, src.netEnv.ExternalServiceCIDRs = tc.exclude, tc.service
		code, body := get(t, Handler(src, slog.New(slog.DiscardHandler)), "/v1/networkutils-env-settings")
		if code != http.StatusOK {
			t.Fatalf("%s: status %d", tc.name, code)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s: body %s lacks %s", tc.name, body, w)
			}
		}
	}
}

// A unix: bind address naming a file that is not a socket (a typo, e.g.
// the checkpoint's path) must not delete it: only a stale socket is
// replaced. A stale socket still is.
func TestListenUnixKeepsOtherFiles(t *testing.T) {
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "ipam.json")
	if err := os.WriteFile(ckpt, []byte(`{"version":"vpc-cni-ipam/1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen("unix:" + ckpt); err == nil {
		ln.Close()
		t.Errorf("listening on a regular file's path succeeded")
	} else if !strings.Contains(err.Error(), "INTROSPECTION_BIND_ADDRESS") {
		t.Errorf("error %v does not name INTROSPECTION_BIND_ADDRESS", err)
	}
	if b, err := os.ReadFile(ckpt); err != nil || string(b) != `{"version":"vpc-cni-ipam/1"}` {
		t.Fatalf("the file at the bind path was changed: %q, %v", b, err)
	}
	// A socket left by an earlier ipamd is replaced.
	sock := filepath.Join(dir, "introspect.sock")
	old, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close()
	ln, err := Listen("unix:" + sock)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()
}
