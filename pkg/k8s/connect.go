package k8s

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
)

// RESTOptions locate the API server.
type RESTOptions struct {
	// Base, when set, is used instead of the in-cluster service account (for
	// running ipamd outside a pod, e.g. against kubeenv in e2e tests).
	Base *rest.Config
	// Kubeconfig, when set (and Base is not), is read instead of the
	// in-cluster service account; inline token/certificate data only.
	Kubeconfig string
	// ClusterEndpoint (CLUSTER_ENDPOINT) overrides the API server URL.
	ClusterEndpoint string
	// Version (VPC_CNI_VERSION) goes into the user agent: <program>-<version>.
	Version string
}

// RESTConfig builds the REST config of the aws-node pod: in-cluster
// credentials unless Base or Kubeconfig is given, CLUSTER_ENDPOINT as host
// override.
func RESTConfig(o RESTOptions) (*rest.Config, error) {
	var cfg *rest.Config
	switch {
	case o.Base != nil:
		cfg = rest.CopyConfig(o.Base)
	case o.Kubeconfig != "":
		var err error
		if cfg, err = loadKubeconfig(o.Kubeconfig); err != nil {
			return nil, err
		}
	default:
		var err error
		if cfg, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("kubernetes client config: %w", err)
		}
	}
	if o.ClusterEndpoint != "" {
		u, err := url.Parse(o.ClusterEndpoint)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("CLUSTER_ENDPOINT=%q: want a URL such as https://example.com:443", o.ClusterEndpoint)
		}
		cfg.Host = o.ClusterEndpoint
	}
	cfg.UserAgent = filepath.Base(os.Args[0])
	if o.Version != "" {
		cfg.UserAgent += "-" + o.Version
	}
	return cfg, nil
}

// Connect is ipamd's start-up sequence (docs/compatibility.md, "API server at
// start"): build the client, wait for the API server as the features require,
// start the node-scoped caches (they run until ctx ends). When no enabled
// feature needs the API server and it stays unreachable, Connect returns
// (nil, error wrapping ErrAPIServerUnavailable) and ipamd continues without
// Kubernetes.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.WaitForAPIServer(ctx); err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// ConnectInBackground is for ipamd started without an API server (no
// feature needed one): it retries Connect every interval until it succeeds,
// then calls onReady once (upstream re-reads maxPods from the node then). It
// returns when connected or when ctx ends.
func ConnectInBackground(ctx context.Context, cfg Config, interval time.Duration, onReady func(*Client)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		c, err := Connect(ctx, cfg)
		if err == nil {
			onReady(c)
			return
		}
		if cfg.Logger != nil {
			cfg.Logger.Debug("kubernetes API server still unavailable", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
