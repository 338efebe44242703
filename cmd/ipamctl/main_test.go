package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
)

type poolSource struct{ pool introspect.Pool }

func (p poolSource) ENIs() map[int]introspect.CardENIs { return nil }
func (p poolSource) ENIConfigName(context.Context) (string, error) {
	return "default", nil
}
func (p poolSource) NetworkEnv() introspect.NetworkEnv { return introspect.NetworkEnv{} }
func (p poolSource) IPAMDEnv() introspect.IPAMDEnv     { return introspect.IPAMDEnv{} }
func (p poolSource) Pool() introspect.Pool             { return p.pool }

func TestPoolViewOverUnixSocket(t *testing.T) {
	now := time.Now()
	pool := introspect.Pool{
		Mode:    "secondary-ip",
		Targets: introspect.Targets{WarmENI: 1, MaxENI: 3, MaxPods: 29, CooldownSeconds: 30},
		Cards: []introspect.CardPool{{Index: 0, Used: 12, Free: 4, Cooling: 2, Quarantined: 1, ENIs: []introspect.ENIPool{
			{ID: "eni-primary", Device: 0, Primary: true, Secondary: 9, Used: 9},
			{ID: "eni-second", Device: 1, Secondary: 9, Used: 3, Free: 4, Cooling: 2, CoolingUntil: now.Add(20 * time.Second)},
		}}},
		WaitingOn:   []introspect.Activity{{Kind: "ec2", What: "AttachNetworkInterface eni-third", Since: now.Add(-time.Second)}},
		WaitingADDs: 3,
	}
	sock := filepath.Join(t.TempDir(), "introspect.sock")
	ln, err := introspect.Listen("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = introspect.Serve(ctx, ln, poolSource{pool}, slog.New(slog.DiscardHandler)) }()

	var out, errOut bytes.Buffer
	if code := run([]string{"-addr", "unix:" + sock, "pool"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{
		"WARM_ENI_TARGET=1", "max pods 29",
		"eni-primary", "primary", "eni-second", "9 IPs",
		"[###~~....]", "(20s)",
		"ec2", "AttachNetworkInterface eni-third",
		"ADDs waiting for an address: 3",
		"card 0: quarantined 1 (pods whose address EC2 took away",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestUnreachableAndUsage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"-addr", addr, "-timeout", "2s", "pool"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "unreachable") {
		t.Errorf("unreachable: exit %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"bogus"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage") {
		t.Errorf("bad usage: exit %d, stderr %q", code, errOut.String())
	}
}

// An ipamd without /v1/pool (upstream's, or ours before it) answers every
// unknown path with its command list and 200. ipamctl must say so, not
// draw that as an empty pool (mode "", every target 0, waiting on nothing).
func TestIpamdWithoutPoolPath(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"AvailableCommands":["/v1/enis","/v1/eni-configs","/v1/networkutils-env-settings","/v1/ipamd-env-settings"]}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, args := range [][]string{{"-addr", addr, "pool"}, {"-addr", addr, "-json", "pool"}} {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		if code != 1 || !strings.Contains(errOut.String(), "/v1/pool") || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 naming the missing /v1/pool and no pool", args, code, out.String(), errOut.String())
		}
	}
}

// TestFetchIgnoresProxyEnv: aws-node's env may carry HTTP(S)_PROXY for
// EC2; ipamctl runs in that env (kubectl exec) and must still reach ipamd
// on the node directly, not through the proxy. The proxy here is a closed
// port, and ipamd listens on a non-loopback address (Go never proxies
// loopback). The env is read once per process, so the fetch runs in a
// child process.
func TestFetchIgnoresProxyEnv(t *testing.T) {
	if addr := os.Getenv("IPAMCTL_TEST_ADDR"); addr != "" {
		var out, errOut bytes.Buffer
		if code := run([]string{"-addr", addr, "-timeout", "5s", "-json", "pool"}, &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		return
	}
	var ip net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("no non-loopback IPv4 address to serve on")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"mode":"ipv4"}`))
	}))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := "http://" + closed.Addr().String()
	closed.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFetchIgnoresProxyEnv$", "-test.count=1")
	cmd.Env = append(os.Environ(), "IPAMCTL_TEST_ADDR="+ln.Addr().String(),
		"HTTP_PROXY="+proxy, "http_proxy="+proxy, "HTTPS_PROXY="+proxy, "https_proxy="+proxy, "NO_PROXY=", "no_proxy=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ipamctl with a proxy in its env did not reach ipamd at %s: %v\n%s", ln.Addr(), err, out)
	}
}

// -h is help, not an error; a wrong command line says what is wrong.
func TestCommandLineMistakesAreNamed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-h"}, 0, "usage: ipamctl"},
		{[]string{"pools"}, 2, `unknown command "pools"`},
		{[]string{"pool", "-json", "now"}, 2, `unexpected argument "now" after pool`},
		// flags after the command apply: this -addr is the one tried
		{[]string{"pool", "-addr", "unix:/nonexistent/ipamctl.sock"}, 1, "unix:/nonexistent/ipamctl.sock unreachable"},
		{nil, 2, "no command"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("ipamctl %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut.String(), tc.code, tc.want)
		}
	}
}
