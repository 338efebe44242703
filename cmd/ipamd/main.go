// Command ipamd is the node daemon of vpc-cni (upstream's aws-k8s-agent):
// it keeps the node's warm pool of VPC addresses and serves the aws-cni
// plugin on /var/run/aws-node/ipamd.sock.
//
// Configuration is upstream's environment variables (see package
// pkg/ipamd/config for every variable, its default and how bad values are
// treated). For tests, VPC_CNI_IPAMD_SOCKET moves the socket,
// AWS_VPC_K8S_CNI_BACKING_STORE the checkpoint, and
// VPC_CNI_DISABLE_HOST_NETWORK=true runs ipamd without touching the host's
// network (no root needed), e.g. against cmd/vpcsim with
// AWS_EC2_ENDPOINT and AWS_EC2_METADATA_SERVICE_ENDPOINT pointing at it;
// VPC_CNI_METRICS_ADDR moves the metrics listener off :61678.
//
// Started by the aws-vpc-cni entrypoint (exec), it writes the conflist the
// entrypoint rendered once its health answers SERVING (pkg/nodeready).
//
// Metrics are served on :61678/metrics unless DISABLE_METRICS=true, and
// introspection on INTROSPECTION_BIND_ADDRESS (127.0.0.1:61679 or
// unix:<path>) unless DISABLE_INTROSPECTION=true.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/hostlinks"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/logfile"
	"github.com/vpc-cni/vpc-cni/pkg/logfile/gzbackup"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
	"github.com/vpc-cni/vpc-cni/pkg/nodeready"
	"github.com/vpc-cni/vpc-cni/pkg/version"
)

func main() { os.Exit(run()) }

// ipamd runs with Go's default GOGC (100). Its live heap is 2-3 MB, so
// the collector's goal is its 4 MB floor or twice the live heap, and what
// a call allocates sets how often it collects: at 50, figure 21's 900
// calls saw 4-7 collections of 1-5 ms each, at 100 two or three
// (bench/README.md, figure 21). Figure 7's anonymous RSS at 110 pods is
// then 9.1 MiB instead of 7.7 (goal 12 MB); at 200 it was 13.3 MiB.

func run() int {
	cfg, warnings, cfgErr := config.Load(os.LookupEnv)
	log, closeLog, err := newLogger(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ipamd: %v\n", err)
		return 1
	}
	defer closeLog()
	// Values upstream would also not use: logged once, with what is used.
	for _, w := range warnings {
		log.Warn("configuration: " + w)
	}
	if cfgErr != nil {
		log.Error("invalid configuration; refusing to start", "err", cfgErr)
		return 1
	}
	// The entrypoint's conflist (pkg/nodeready), taken out of the
	// environment before anything could inherit it.
	handoff, haveHandoff, err := nodeready.FromEnv()
	if err != nil {
		log.Error("invalid hand-off from the entrypoint; refusing to start", "err", err)
		return 1
	}
	log.Info("starting ipamd", "version", version.Version)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	var h *nodeready.Handoff
	if haveHandoff {
		h = &handoff
	}
	if err := serve(ctx, cfg, log, h); err != nil {
		log.Error("ipamd stopped", "err", err)
		return 1
	}
	log.Info("ipamd stopped")
	return 0
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, handoff *nodeready.Handoff) error {
	started := time.Now()
	m := metrics.New(version.Version)
	kc, later, err := connectKube(ctx, cfg, log)
	if err != nil {
		return err
	}
	// One tracker: awsutils shows EC2 calls in it, ipamd the other waits.
	track := introspect.NewTracker(nil)
	acfg := awsutils.Config{
		EC2Endpoint: cfg.EC2Endpoint, IMDSEndpoint: cfg.IMDSEndpoint, HTTPTimeout: cfg.HTTPTimeout,
		Version: cfg.Version, ClusterName: cfg.ClusterName, AdditionalTags: cfg.AdditionalENITags,
		IMDSOnly: cfg.IMDSOnlyMode, Observer: m, Calls: track, Retry: ipamd.EC2Retry(),
	}
	md, err := awsutils.NewMetadata(acfg)
	if err != nil {
		return err
	}
	ec2, err := awsutils.NewEC2(ctx, acfg, md)
	if err != nil {
		return err
	}
	opts := ipamd.Options{
		Config: cfg, EC2: ec2, Metadata: md, Subnets: ec2, Leaked: ec2, Kube: kc,
		Logger: log, PodLinks: hostlinks.Links{VethPrefix: cfg.VethPrefix}, Metrics: m, StartedAt: started,
		Tracker: track,
	}
	// A port another process holds (an old aws-node still stopping, say)
	// does not stop ipamd from serving pods: Run listens again with
	// back-off, as upstream restarts these servers. Only an address that
	// can never work refuses the start.
	if !cfg.DisableMetrics {
		opts.MetricsListen = func() (net.Listener, error) { return net.Listen("tcp", cfg.MetricsAddr) }
		if opts.MetricsListener, err = opts.MetricsListen(); err != nil {
			log.Warn("metrics: cannot listen yet; serving pods and trying again", "addr", cfg.MetricsAddr, "err", err)
			opts.MetricsListener = nil
		} else {
			log.Info("serving metrics", "addr", opts.MetricsListener.Addr().String())
		}
	}
	if !cfg.DisableIntrospection {
		opts.IntrospectionListen = func() (net.Listener, error) { return introspect.Listen(cfg.IntrospectionAddr) }
		if opts.IntrospectionListener, err = opts.IntrospectionListen(); err != nil {
			if _, refusedByOS := errors.AsType[*net.OpError](err); !refusedByOS {
				if opts.MetricsListener != nil {
					_ = opts.MetricsListener.Close() // the listen error is the one to report
				}
				return fmt.Errorf("INTROSPECTION_BIND_ADDRESS: %w", err)
			}
			log.Warn("introspection: cannot listen yet; serving pods and trying again", "addr", cfg.IntrospectionAddr, "err", err)
			opts.IntrospectionListener = nil
		} else {
			log.Info("serving introspection", "addr", opts.IntrospectionListener.Addr().String())
		}
	}
	if cfg.FastIntervals {
		log.Warn("VPC_CNI_TEST_FAST_INTERVALS=true: sub-second pool timers (test mode)")
		opts.Times = ipamd.Intervals{
			Pool: 100 * time.Millisecond, Reconcile: time.Second, ReleaseSpacing: time.Millisecond,
			MinENIAge: time.Millisecond, ReleasedGrace: time.Second, IMDSWait: 2 * time.Second,
			AddWait: 10 * time.Second, LeakedSweep: 5 * time.Second, LeakedMinAge: time.Second, NodeRefresh: time.Second,
			FailureBackoff: 50 * time.Millisecond, OrphanSweep: 200 * time.Millisecond, OrphanGrace: 5 * time.Second,
		}
	}
	if cfg.DisableHostNetwork {
		log.Warn("VPC_CNI_DISABLE_HOST_NETWORK=true: no host networking is programmed (test mode)")
		opts.PodLinks = nil
	} else {
		opts.Host = networkutils.New(log.With("component", "networkutils"))
	}
	n, err := ipamd.New(opts)
	if err != nil {
		return err
	}
	l, err := ipamd.Listen(cfg.SocketPath)
	if err != nil {
		return err
	}
	if later != nil {
		// No feature needs the API server and it was not reachable: pick
		// it up when it is (upstream re-reads max pods then).
		bctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go k8s.ConnectInBackground(bctx, *later, 5*time.Second, func(c *k8s.Client) {
			n.SetKubernetes(bctx, kube{c})
		})
	}
	if handoff == nil {
		return n.Run(ctx, l)
	}
	return runAndMarkReady(ctx, log, cfg.SocketPath, *handoff, func(ctx context.Context) error { return n.Run(ctx, l) })
}

// runAndMarkReady runs ipamd and writes the entrypoint's conflist once
// ipamd's health answers SERVING on its socket, as the entrypoint did
// before it exec'd ipamd. A conflist that cannot be written stops ipamd
// with an error (exit 1): the node would never become ready.
func runAndMarkReady(ctx context.Context, log *slog.Logger, socket string, h nodeready.Handoff, run func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var setupErr error // written before done closes
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := nodeready.WriteWhenServing(ctx, socket, time.Second, h); err != nil {
			if ctx.Err() == nil {
				setupErr = err
				cancel()
			}
			return
		}
		log.Info("wrote CNI configuration; node network ready", "path", h.Path)
	}()
	err := run(ctx)
	cancel()
	<-done
	if setupErr != nil {
		return errors.Join(fmt.Errorf("node network setup failed: %w", setupErr), err)
	}
	return err
}

// newLogger writes JSON to AWS_VPC_K8S_CNI_LOG_FILE (stdout, stderr or a
// file) at AWS_VPC_K8S_CNI_LOGLEVEL.
func newLogger(cfg config.Config) (*slog.Logger, func(), error) {
	var w io.Writer
	closeFn := func() {}
	toFile := false
	switch strings.ToLower(cfg.LogFile) {
	case "stdout":
		w = os.Stdout
	case "stderr", "":
		w = os.Stderr
	default:
		// 0600, rotated at 100 MB × 5 gzipped backups, 30 days, as upstream
		// (docs/compatibility.md, "ipamd: configuration and environment variables").
		f, err := logfile.Open(cfg.LogFile, logfile.Options{Compress: gzbackup.Compress})
		if err != nil {
			return nil, nil, fmt.Errorf("AWS_VPC_K8S_CNI_LOG_FILE=%q: %w", cfg.LogFile, err)
		}
		w, toFile = f, true
		closeFn = func() { _ = f.Close() } // nothing useful to do on a close error at exit
	}
	level := slog.LevelDebug
	switch cfg.LogLevel {
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error", "fatal":
		level = slog.LevelError
	}
	var h slog.Handler = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	if toFile {
		// Errors (a refusal to start above all) also reach the container's
		// output, where a crash loop is looked at.
		h = logfile.WithErrorsTo(h, slog.NewJSONHandler(os.Stderr, nil))
	}
	return slog.New(h), closeFn, nil
}
