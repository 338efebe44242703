// Command aws-vpc-cni is the aws-node container's entrypoint
// (docs/compatibility.md, "Entrypoint and init container"): validate the
// environment, install the CNI plugin binaries on the host, render
// 10-aws.conflist, then replace itself with ipamd (exec: same pid, so
// SIGTERM and the exit status are ipamd's and no entrypoint stays resident).
// ipamd writes the conflist, which marks the node network-ready for kubelet,
// once its health service answers SERVING (pkg/nodeready).
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
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/conflist"
	"github.com/vpc-cni/vpc-cni/pkg/nodeready"
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
	ipamd     string
	ipamdArgs []string
	pluginDir string
	plugins   []string // required first, then optional
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("aws-vpc-cni", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{plugins: []string{"aws-cni", "egress-cni"}}
	fs.StringVar(&o.ipamd, "ipamd", "/app/aws-k8s-agent", "ipamd binary the entrypoint execs into")
	fs.StringVar(&o.pluginDir, "plugin-dir", "/app", "directory holding aws-cni and (optionally) egress-cni")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.ipamdArgs = fs.Args()
	return o, nil
}

// run prepares the node and execs ipamd; it returns only on failure, with
// the exit code (1).
func run(ctx context.Context, log *slog.Logger, args []string, lookup func(string) (string, bool), imds func() (nodeIdentity, error)) int {
	opts, err := parseFlags(args, os.Stderr)
	if err != nil {
		return 1
	}
	l, err := prepare(ctx, log, opts, lookup, imds)
	if err != nil {
		log.Error("node setup failed; not starting ipamd", "err", err)
		return 1
	}
	log.Info("starting ipamd in place of the entrypoint; it writes the CNI configuration once healthy",
		"path", l.path, "conflist", l.handoff.Path)
	err = syscall.Exec(l.path, l.argv, l.env(os.Environ()))
	log.Error("starting ipamd failed", "path", l.path, "err", err)
	return 1
}

// launch is how the entrypoint becomes ipamd.
type launch struct {
	path    string
	argv    []string
	handoff nodeready.Handoff
}

// env is ipamd's environment: the container's without any stale hand-off,
// plus this one.
func (l launch) env(base []string) []string {
	env := make([]string, 0, len(base)+2)
	for _, kv := range base {
		if !strings.HasPrefix(kv, nodeready.EnvPath+"=") && !strings.HasPrefix(kv, nodeready.EnvContent+"=") {
			env = append(env, kv)
		}
	}
	return append(env, l.handoff.Env()...)
}

// prepare checks the environment, installs the plugins and renders the
// conflist (with the egress node IP from IMDS).
func prepare(ctx context.Context, log *slog.Logger, opts options, lookup func(string) (string, bool), imds func() (nodeIdentity, error)) (launch, error) {
	cfg, warnings, err := parseConfig(lookup)
	for _, w := range warnings {
		log.Warn("environment: " + w)
	}
	if err != nil {
		return launch{}, fmt.Errorf("invalid environment: %w", err)
	}

	haveEgress, err := installPlugins(log, opts, cfg.HostCNIBinPath)
	if err != nil {
		return launch{}, fmt.Errorf("installing CNI plugins: %w", err)
	}
	if !haveEgress {
		if cfg.EgressEnabled {
			return launch{}, fmt.Errorf("egress is enabled but the image has no egress-cni plugin in %s", opts.pluginDir)
		}
		cfg.Conflist.Egress = nil
	}
	b, err := renderConflist(ctx, log, cfg, imds)
	if err != nil {
		return launch{}, err
	}
	return launch{
		path:    opts.ipamd,
		argv:    append([]string{opts.ipamd}, opts.ipamdArgs...),
		handoff: nodeready.Handoff{Path: filepath.Join(cfg.HostCNIConfDirPath, conflist.FileName), Content: b},
	}, nil
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

// renderConflist fills in the egress node IP and renders the conflist. An
// IPv6 cluster's entry carries the node's IPv4 address even with egress
// off, as upstream's does; an IPv4 cluster's only with IPv6 egress on.
func renderConflist(ctx context.Context, log *slog.Logger, cfg config, imds func() (nodeIdentity, error)) ([]byte, error) {
	if e := cfg.Conflist.Egress; e != nil && (cfg.EgressEnabled || cfg.IPv6Cluster) {
		ip, err := egressNodeIP(ctx, imds, cfg.IPv6Cluster)
		switch {
		case err == nil:
			e.Enabled, e.NodeIP = cfg.EgressEnabled, ip.String()
		case !cfg.EgressEnabled:
			log.Warn("the node's IPv4 address is unknown; the disabled egress entry gets no nodeIP", "err", err)
		case cfg.IPv6Cluster:
			return nil, fmt.Errorf("IPv4 egress for IPv6 pods needs the node's IPv4 address: %w", err)
		default:
			log.Warn("IPv6 egress disabled: the node has no IPv6 address", "err", err)
		}
	}
	b, err := conflist.Render(cfg.Conflist)
	if err != nil {
		return nil, fmt.Errorf("rendering the conflist: %w", err)
	}
	return b, nil
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
