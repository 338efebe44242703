// Package k8s is ipamd's access to the Kubernetes API: its own Node, the pods
// scheduled on it, its CNINode, the ENIConfigs, pod annotations and events.
// Every cache is scoped to this node (field selectors), so nothing ever lists
// or watches all nodes or all pods of the cluster, and holds only the fields
// ipamd reads (transform.go).
//
// Typical use in ipamd's main:
//
//	rc, err := k8s.RESTConfig(k8s.RESTOptions{ClusterEndpoint: cfg.ClusterEndpoint, Version: cfg.Version})
//	kc, err := k8s.Connect(ctx, k8s.Config{RESTConfig: rc, NodeName: os.Getenv("MY_NODE_NAME"),
//		PodName: os.Getenv("MY_POD_NAME"), Features: k8s.Features{...}, Logger: log})
//	// errors.Is(err, k8s.ErrAPIServerUnavailable) and no feature needs it:
//	// run without Kubernetes, and k8s.ConnectInBackground to attach later.
//
// then kc.NodeSchedulable, kc.MaxPods, kc.ENIConfigForNode,
// kc.AddCNINodeFeature, kc.AnnotatePodIP/ClearPodIP, kc.Eventf.
package k8s

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
)

// Features are the enabled ipamd features that change what the client needs.
type Features struct {
	CustomNetworking bool // AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG
	PodENI           bool // ENABLE_POD_ENI
	AnnotatePodIP    bool // ANNOTATE_POD_IP
}

// needAPIServer reports whether ipamd must not start without the API server.
func (f Features) needAPIServer() bool { return f.CustomNetworking || f.PodENI || f.AnnotatePodIP }

// Config configures a Client.
type Config struct {
	RESTConfig *rest.Config
	// NodeName is this node (MY_NODE_NAME); also the CNINode name.
	NodeName string
	// PodName/PodNamespace name the aws-node pod that events are about
	// (MY_POD_NAME, kube-system). Without PodName events are about the Node.
	PodName      string
	PodNamespace string
	Features     Features
	// ENIConfigSelector holds ENI_CONFIG_LABEL_DEF / ENI_CONFIG_ANNOTATION_DEF.
	ENIConfigSelector eniconfig.Selector
	Logger            *slog.Logger

	// APIServerWait tunes WaitForAPIServer; zero values take upstream's timings.
	APIServerWait APIServerWait
	// EventDedupWindow suppresses identical events (same type, reason and
	// message) within the window. Default 5 minutes.
	EventDedupWindow time.Duration
}

// Defaults fills unset fields.
func (c *Config) Defaults() {
	if c.PodNamespace == "" {
		c.PodNamespace = "kube-system"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.EventDedupWindow == 0 {
		c.EventDedupWindow = 5 * time.Minute
	}
	c.APIServerWait.defaults()
}

// Validate reports every configuration error at once.
func (c *Config) Validate() error {
	var errs []error
	if c.RESTConfig == nil {
		errs = append(errs, errors.New("k8s: RESTConfig is nil"))
	}
	if c.NodeName == "" {
		errs = append(errs, errors.New("k8s: NodeName is empty (set MY_NODE_NAME from spec.nodeName)"))
	}
	return errors.Join(errs...)
}

// Errors callers can test with errors.Is.
var (
	ErrNotStarted           = errors.New("kubernetes client not started")
	ErrAPIServerUnavailable = errors.New("kubernetes API server unavailable")
	ErrENIConfigNotFound    = errors.New("ENIConfig not found")
	ErrENIConfigInvalid     = errors.New("ENIConfig invalid")
	ErrCNINodeNotFound      = errors.New("CNINode not found")
)

// Client is ipamd's Kubernetes client. Create it with New, then call
// WaitForAPIServer and Start. Safe for concurrent use after Start.
type Client struct {
	cfg Config
	log *slog.Logger
	api *api // live reads and every write

	// Caches of this node's objects: its Node and pods always, ENIConfigs
	// with custom networking, its CNINode when a feature declares on it.
	node, pods, eniConfigs, cniNode *informer

	startOnce sync.Once
	started   chan struct{}
	startErr  error

	events eventDedup

	// beforeFeaturePatch runs between the read and the patch of
	// AddCNINodeFeature; tests use it to race another writer.
	beforeFeaturePatch func()
}

// New builds the client and its node-scoped caches. It does not contact
// the API server.
func New(cfg Config) (*Client, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, fmt.Errorf("k8s scheme: %w", err)
	}
	rc := rest.CopyConfig(cfg.RESTConfig)
	if rc.UserAgent == "" {
		rc.UserAgent = "aws-node"
	}
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, fmt.Errorf("k8s http client: %w", err)
	}
	a, err := newAPI(rc, hc, scheme)
	if err != nil {
		return nil, err
	}
	if cfg.Features.CustomNetworking {
		if err := cfg.ENIConfigSelector.Validate(); err != nil {
			// Upstream runs on with such a key; say so once, loudly.
			cfg.Logger.Warn("custom networking: a configured ENIConfig key can never match, so nodes resolve their ENIConfig without it", "err", err)
		}
	}
	c := &Client{
		cfg:     cfg,
		log:     cfg.Logger,
		api:     a,
		started: make(chan struct{}),
		events:  eventDedup{window: cfg.EventDedupWindow, last: map[string]time.Time{}},
	}
	byName := fields.OneTermEqualSelector("metadata.name", cfg.NodeName)
	if c.node, err = a.newInformer(nodesRes, byName, trimNode); err != nil {
		return nil, err
	}
	if c.pods, err = a.newInformer(podsRes, fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName), trimPod); err != nil {
		return nil, err
	}
	if cfg.Features.CustomNetworking {
		if c.eniConfigs, err = a.newInformer(eniConfigsRes, fields.Everything(), nil); err != nil {
			return nil, err
		}
	}
	if cfg.Features.PodENI {
		if c.cniNode, err = a.newInformer(cniNodesRes, byName, nil); err != nil {
			return nil, err
		}
	}
	for _, i := range c.informers() {
		if err := logWatchErrors(i, c.log); err != nil {
			return nil, fmt.Errorf("k8s informer for %s: %w", i.res.plural, err)
		}
	}
	return c, nil
}

func (c *Client) informers() []*informer {
	var out []*informer
	for _, i := range []*informer{c.node, c.pods, c.eniConfigs, c.cniNode} {
		if i != nil {
			out = append(out, i)
		}
	}
	return out
}

// Start runs the informers until ctx ends and blocks until their first sync
// (or ctx ends). Call once the API server is reachable.
func (c *Client) Start(ctx context.Context) error {
	c.startOnce.Do(func() { c.startErr = c.start(ctx) })
	return c.startErr
}

func (c *Client) start(ctx context.Context) error {
	var synced []toolscache.InformerSynced
	for _, i := range c.informers() {
		go i.inf.RunWithContext(ctx)
		synced = append(synced, i.inf.HasSynced)
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("k8s cache sync: %w", context.Cause(ctx))
	}
	close(c.started)
	c.log.Info("kubernetes caches synced", "node", c.cfg.NodeName)
	return nil
}

func (c *Client) ready() error {
	select {
	case <-c.started:
		return nil
	default:
		return ErrNotStarted
	}
}

// getCached reads from the cache i when this client runs one (and it is
// synced), else live.
func getCached[T runtime.Object](ctx context.Context, c *Client, i *informer, r apiResource, namespace, name string, live T) (T, error) {
	if i == nil || c.ready() != nil {
		err := c.api.get(ctx, r, namespace, name, live)
		return live, err
	}
	obj, err := i.get(namespace, name)
	if err != nil {
		var zero T
		return zero, err
	}
	return obj.(T), nil
}
