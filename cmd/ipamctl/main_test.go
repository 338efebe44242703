package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
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
		Cards: []introspect.CardPool{{Index: 0, Used: 12, Free: 4, Cooling: 2, ENIs: []introspect.ENIPool{
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
