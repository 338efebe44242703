// Command aws-vpc-cni is the aws-node container's entrypoint
// (docs/compatibility.md, "Entrypoint and init container"): validate the
// environment, install the CNI plugin binaries on the host, start ipamd, wait
// until it reports healthy over gRPC, then write 10-aws.conflist (which marks
// the node network-ready for kubelet), forward SIGTERM to ipamd and exit with
// its status.
//
// Invoked as grpc-health-probe (a link in the image), or as
// `aws-vpc-cni probe`, it is a grpc-health-probe compatible health check.
// As aws-vpc-cni-init or `aws-vpc-cni init` it is the init container: copy
// the core CNI plugins next to it to the host and set node sysctls.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/conflist"
)

func main() {
	ctx := context.Background()
	if filepath.Base(os.Args[0]) == "grpc-health-probe" {
		os.Exit(runProbe(ctx, os.Args[1:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(runProbe(ctx, os.Args[2:], os.Stdout, os.Stderr))
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if filepath.Base(os.Args[0]) == "aws-vpc-cni-init" || len(os.Args) > 1 && os.Args[1] == "init" {
		self, err := os.Executable()
		if err != nil {
			log.Error("locating own binary", "err", err)
			os.Exit(1)
		}
		os.Exit(runInit(ctx, log, os.LookupEnv, newIMDS, initOptions{dir: filepath.Dir(self), self: self, procSys: "/proc/sys"}))
	}
	os.Exit(run(ctx, log, os.Args[1:], os.LookupEnv, newIMDS))
}

// nodeIdentity is the IMDS lookup of the node's addresses for the egress
// plugin (pkg/awsutils.Metadata has it).
type nodeIdentity interface {
	Identity(ctx context.Context) (awsutils.Identity, error)
}

func newIMDS() (nodeIdentity, error) {
	return awsutils.NewMetadata(awsutils.Config{})
}

// options are the entrypoint's flags: where things are in the image.
type options struct {
	ipamd       string
	ipamdArgs   []string
	pluginDir   string
	plugins     []string // required first, then optional
	healthRetry time.Duration
	childEnv    []string // extra environment for ipamd (tests)
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("aws-vpc-cni", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{plugins: []string{"aws-cni", "egress-cni"}}
	fs.StringVar(&o.ipamd, "ipamd", "/app/aws-k8s-agent", "ipamd binary started as a child")
	fs.StringVar(&o.pluginDir, "plugin-dir", "/app", "directory holding aws-cni and (optionally) egress-cni")
	fs.DurationVar(&o.healthRetry, "health-retry", time.Second, "retry period of the ipamd health check")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.ipamdArgs = fs.Args()
	return o, nil
}

// run returns the process exit code: 1 for bad configuration or a failed
// installation, otherwise ipamd's.
func run(ctx context.Context, log *slog.Logger, args []string, lookup func(string) (string, bool), imds func() (nodeIdentity, error)) int {
	opts, err := parseFlags(args, os.Stderr)
	if err != nil {
		return 1
	}
	return runWith(ctx, log, opts, lookup, imds)
}

func runWith(ctx context.Context, log *slog.Logger, opts options, lookup func(string) (string, bool), imds func() (nodeIdentity, error)) int {
	cfg, warnings, err := parseConfig(lookup)
	for _, w := range warnings {
		log.Warn("environment: " + w)
	}
	if err != nil {
		log.Error("invalid environment", "err", err)
		return 1
	}

	haveEgress, err := installPlugins(log, opts, cfg.HostCNIBinPath)
	if err != nil {
		log.Error("installing CNI plugins failed", "err", err)
		return 1
	}
	if !haveEgress {
		if cfg.EgressEnabled {
			log.Error("egress is enabled but the image has no egress-cni plugin", "dir", opts.pluginDir)
			return 1
		}
		cfg.Conflist.Egress = nil
	}

	child := exec.Command(opts.ipamd, opts.ipamdArgs...)
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	child.Env = append(os.Environ(), opts.childEnv...)
	if err := child.Start(); err != nil {
		log.Error("starting ipamd failed", "path", opts.ipamd, "err", err)
		return 1
	}
	log.Info("started ipamd", "path", opts.ipamd, "pid", child.Process.Pid)
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = child.Wait()
		close(exited)
	}()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	// Until ipamd exits: wait for health, write the conflist, then forward
	// signals. ctx ending (tests) counts as SIGTERM.
	setup, cancelSetup := context.WithCancel(ctx)
	defer cancelSetup()
	setupDone := make(chan error, 1)
	go func() { setupDone <- configureNode(setup, log, cfg, opts, imds) }()
	terminating, setupFailed := false, false
	ctxDone := ctx.Done()
	for {
		select {
		case err := <-setupDone:
			setupDone = nil
			if err != nil && !terminating {
				log.Error("node network setup failed; stopping ipamd", "err", err)
				terminating, setupFailed = true, true
				_ = child.Process.Signal(syscall.SIGTERM) // it may be exiting already
			}
		case s := <-sigs:
			log.Info("forwarding signal to ipamd", "signal", s.String())
			terminating = true
			cancelSetup()
			_ = child.Process.Signal(s) // it may be exiting already
		case <-ctxDone:
			ctxDone = nil
			terminating = true
			cancelSetup()
			_ = child.Process.Signal(syscall.SIGTERM) // it may be exiting already
		case <-exited:
			cancelSetup()
			if setupDone != nil {
				<-setupDone // cancelled: returns promptly; no goroutine outlives run
			}
			code := exitCode(waitErr)
			log.Info("ipamd exited", "code", code, "err", waitErr)
			if code == 0 && (setupFailed || setupDone != nil && !terminating) {
				code = 1 // the node never became ready
			}
			return code
		}
	}
}

// installPlugins copies the plugin binaries; the first is required. It
// reports whether egress-cni was installed.
func installPlugins(log *slog.Logger, opts options, dst string) (haveEgress bool, err error) {
	for i, name := range opts.plugins {
		src := filepath.Join(opts.pluginDir, name)
		if _, err := os.Stat(src); err != nil && i > 0 && errors.Is(err, os.ErrNotExist) {
			log.Warn("optional plugin not in image; leaving it out of the conflist", "plugin", name)
			continue
		}
		if err := installFile(src, filepath.Join(dst, name)); err != nil {
			return false, err
		}
		log.Info("installed CNI plugin", "plugin", name, "dir", dst)
		if name == "egress-cni" {
			haveEgress = true
		}
	}
	return haveEgress, nil
}

// configureNode waits for ipamd, fills in the egress node IP and writes the
// conflist.
func configureNode(ctx context.Context, log *slog.Logger, cfg config, opts options, imds func() (nodeIdentity, error)) error {
	if err := waitHealthy(ctx, log, cfg.SocketPath, opts.healthRetry); err != nil {
		return err
	}
	log.Info("ipamd is healthy", "socket", cfg.SocketPath)
	if e := cfg.Conflist.Egress; e != nil && cfg.EgressEnabled {
		ip, err := egressNodeIP(ctx, imds, cfg.IPv6Cluster)
		switch {
		case err == nil:
			e.Enabled, e.NodeIP = true, ip.String()
		case cfg.IPv6Cluster:
			return fmt.Errorf("IPv4 egress for IPv6 pods needs the node's IPv4 address: %w", err)
		default:
			log.Warn("IPv6 egress disabled: the node has no IPv6 address", "err", err)
		}
	}
	b, err := conflist.Render(cfg.Conflist)
	if err != nil {
		return err
	}
	dst := filepath.Join(cfg.HostCNIConfDirPath, conflist.FileName)
	if err := writeAtomic(dst, 0o644, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return err
	}
	log.Info("wrote CNI configuration; node network ready", "path", dst)
	return nil
}

func egressNodeIP(ctx context.Context, imds func() (nodeIdentity, error), ipv6Cluster bool) (netip.Addr, error) {
	md, err := imds()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("IMDS client: %w", err)
	}
	id, err := md.Identity(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("IMDS: %w", err)
	}
	ip := id.PrimaryIPv6
	if ipv6Cluster {
		ip = id.LocalIPv4
	}
	if !ip.IsValid() {
		return netip.Addr{}, errors.New("IMDS reports no address")
	}
	return ip, nil
}

// exitCode maps a child's wait error to an exit status (128+n when killed
// by signal n, as shells do).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return 1
}
