package k8s

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRESTConfigAndConnect(t *testing.T) {
	env, admin := testEnv(t)
	rc, err := RESTConfig(RESTOptions{Base: env.Config, Version: "v9.9.9"})
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
	if _, err := RESTConfig(RESTOptions{Base: env.Config, ClusterEndpoint: "not a url"}); err == nil || !strings.Contains(err.Error(), "CLUSTER_ENDPOINT") {
		t.Errorf("bad CLUSTER_ENDPOINT: %v", err)
	}
}
