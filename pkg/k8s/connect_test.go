package k8s

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRESTConfigAndConnect(t *testing.T) {
	env, admin := testEnv(t)
	// kubeenv's kubeconfig, as an out-of-cluster ipamd would read it.
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.Kubeconfig(kc); err != nil {
		t.Fatal(err)
	}
	rc, err := RESTConfig(RESTOptions{Kubeconfig: kc, Version: "v9.9.9"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(rc.UserAgent, "-v9.9.9") {
		t.Errorf("user agent %q lacks the version", rc.UserAgent)
	}
	createNode(t, admin, "connect-node", nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Connect(ctx, Config{RESTConfig: rc, NodeName: "connect-node"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Node(ctx); err != nil || n.Name != "connect-node" {
		t.Fatalf("Node after Connect: %v %v", n, err)
	}

	// Unreachable and not needed: nil client, ErrAPIServerUnavailable.
	rc, err = RESTConfig(RESTOptions{Base: env.Config, ClusterEndpoint: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	quick := APIServerWait{RequestTimeout: time.Second, OptionalInterval: 20 * time.Millisecond, OptionalTimeout: 200 * time.Millisecond}
	c, err = Connect(ctx, Config{RESTConfig: rc, NodeName: "connect-node", APIServerWait: quick})
	if c != nil || !errors.Is(err, ErrAPIServerUnavailable) {
		t.Errorf("unreachable: got %v, %v", c, err)
	}
	if err := os.WriteFile(kc, []byte("current-context: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RESTConfig(RESTOptions{Kubeconfig: kc}); err == nil || !strings.Contains(err.Error(), `current-context "nope" not found`) {
		t.Errorf("broken kubeconfig: %v", err)
	}
	if _, err := RESTConfig(RESTOptions{Base: env.Config, ClusterEndpoint: "not a url"}); err == nil || !strings.Contains(err.Error(), "CLUSTER_ENDPOINT") {
		t.Errorf("bad CLUSTER_ENDPOINT: %v", err)
	}
}

// The background connect hands over a working client once the API server
// answers, and gives up silently with ctx while it does not.
func TestConnectInBackground(t *testing.T) {
	env, admin := testEnv(t)
	createNode(t, admin, "background-node", nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *Client, 1)
	cfg := Config{
		RESTConfig: env.Config, NodeName: "background-node",
		// Each attempt gets the default bound: a loaded API server can take
		// longer than a short one to answer every fresh client's first request.
		APIServerWait: APIServerWait{OptionalInterval: 20 * time.Millisecond},
	}
	go ConnectInBackground(ctx, cfg, 50*time.Millisecond, func(c *Client) { ready <- c })
	select {
	case c := <-ready:
		if n, err := c.Node(ctx); err != nil || n.Name != "background-node" {
			t.Fatalf("Node: %v %v", n, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("never connected")
	}

	// Unreachable: keeps trying and returns when ctx ends, never calling onReady.
	down := *env.Config
	down.Host = "https://127.0.0.1:1"
	cfg.RESTConfig = &down
	cfg.APIServerWait.OptionalTimeout = 100 * time.Millisecond
	dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer dcancel()
	ConnectInBackground(dctx, cfg, 20*time.Millisecond, func(*Client) { t.Error("onReady called without a server") })
}
