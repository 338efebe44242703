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
	"reflect"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

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

var setLoggerOnce sync.Once

// Client is ipamd's Kubernetes client. Create it with New, then call
// WaitForAPIServer and Start. Safe for concurrent use after Start.
type Client struct {
	cfg    Config
	log    *slog.Logger
	scheme *runtime.Scheme

	cache  cache.Cache
	client client.Client // reads from cache, writes to the API server
	direct client.Client // live reads, for retries after a conflict

	startOnce sync.Once
	started   chan struct{}
	startErr  error

	events eventDedup

	// beforeFeaturePatch runs between the read and the patch of
	// AddCNINodeFeature; tests use it to race another writer.
	beforeFeaturePatch func()
}

// New builds the client and its node-scoped cache. It does not contact the
// API server.
func New(cfg Config) (*Client, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// controller-runtime logs through a process-wide logr sink; route it to
	// our logger once instead of letting it complain on stderr.
	setLoggerOnce.Do(func() { ctrllog.SetLogger(logr.FromSlogHandler(cfg.Logger.Handler())) })
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
	// A static mapper: no discovery round trips, and New works before the
	// API server (or a CRD) exists.
	mapper := newRESTMapper()
	node := cfg.NodeName
	byName := fields.OneTermEqualSelector("metadata.name", node)
	c, err := cache.New(rc, cache.Options{
		HTTPClient: hc,
		Scheme:     scheme,
		Mapper:     mapper,
		// Never fall back to a lazily created, cluster-wide informer.
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Node{}: {Field: byName, Transform: trimNode},
			&corev1.Pod{}:  {Field: fields.OneTermEqualSelector("spec.nodeName", node), Transform: trimPod},
			&CNINode{}:     {Field: byName},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("k8s cache: %w", err)
	}
	cl, err := client.New(rc, client.Options{HTTPClient: hc, Scheme: scheme, Mapper: mapper, Cache: &client.CacheOptions{Reader: c}})
	if err != nil {
		return nil, fmt.Errorf("k8s client: %w", err)
	}
	direct, err := client.New(rc, client.Options{HTTPClient: hc, Scheme: scheme, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("k8s client: %w", err)
	}
	return &Client{
		cfg:     cfg,
		log:     cfg.Logger,
		scheme:  scheme,
		cache:   c,
		client:  cl,
		direct:  direct,
		started: make(chan struct{}),
		events:  eventDedup{window: cfg.EventDedupWindow, last: map[string]time.Time{}},
	}, nil
}

// cachedTypes are the informers this client runs: its node and pods always,
// ENIConfigs with custom networking, the CNINode when a feature declares on it.
func (c *Client) cachedTypes() []client.Object {
	objs := []client.Object{&corev1.Node{}, &corev1.Pod{}}
	if c.cfg.Features.CustomNetworking {
		objs = append(objs, &eniconfig.ENIConfig{})
	}
	if c.cfg.Features.PodENI {
		objs = append(objs, &CNINode{})
	}
	return objs
}

// Start runs the informers until ctx ends and blocks until their first sync
// (or ctx ends). Call once the API server is reachable.
func (c *Client) Start(ctx context.Context) error {
	c.startOnce.Do(func() { c.startErr = c.start(ctx) })
	return c.startErr
}

func (c *Client) start(ctx context.Context) error {
	for _, obj := range c.cachedTypes() {
		if _, err := c.cache.GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("k8s informer for %T: %w", obj, err)
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- c.cache.Start(ctx) }()
	if !c.cache.WaitForCacheSync(ctx) {
		select {
		case err := <-errc:
			return fmt.Errorf("k8s cache: %w", err)
		default:
			return fmt.Errorf("k8s cache sync: %w", context.Cause(ctx))
		}
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

// reader returns the cache for the types this client informs on and a live
// reader for the rest (e.g. ENIConfigs read once without custom networking).
func (c *Client) reader(obj client.Object) client.Reader {
	for _, o := range c.cachedTypes() {
		if reflect.TypeOf(o) == reflect.TypeOf(obj) {
			return c.client
		}
	}
	return c.direct
}
