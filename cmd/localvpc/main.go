// Command localvpc runs a local VPC on this machine: vpcsim, its data plane
// of network namespaces, and nodes running the aws-node agent (installer +
// ipamd) with pods wired through the aws-cni plugin by libcni.
//
//	localvpc demo     [flags]  the guided tour `make demo` runs
//	localvpc up       [flags]  start the VPC and its nodes, print how to reach them, wait for Ctrl-C
//	localvpc cleanup           remove what crashed earlier runs left behind
//
// It needs root (network and mount namespaces). Nothing is changed in the
// machine's own network namespace.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/vpc-cni/vpc-cni/internal/earlysignal"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

func main() { os.Exit(run(os.Args[1:])) }

func usage(w io.Writer) {
	fmt.Fprintf(w, `usage: localvpc <command> [flags]

commands:
  demo      start a two-node VPC, run pods and traffic through it, clean up
  up        start the VPC and its nodes and keep them until Ctrl-C
  cleanup   remove namespaces and directories left by crashed runs

run "localvpc <command> -h" for the command's flags
`)
}

func run(args []string) int { return runWith(args, os.Stdout, os.Stderr) }

func runWith(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := earlysignal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "demo":
		return runDemo(ctx, args[1:], stderr)
	case "up":
		return runUp(ctx, args[1:], stdout, stderr)
	case "cleanup":
		return runCleanup(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "localvpc: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
}

// runCleanup removes what crashed runs left; it takes no arguments, so
// `cleanup -h` shows help instead of cleaning.
func runCleanup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cleanup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: localvpc cleanup\n\nremoves the namespaces, processes and run directories of localvpc runs whose process is gone; live runs are left alone")
	}
	if code, ok := parseCommand(fs, args); !ok {
		return code
	}
	// Without root it can neither unmount namespaces nor stop processes,
	// and would otherwise end quietly as if nothing were left.
	if geteuid() != 0 {
		fmt.Fprintln(stderr, "localvpc cleanup: needs root: leftovers are network namespaces, mounts and root's processes")
		return 1
	}
	removed, err := localvpc.CleanupStale("")
	for _, r := range removed {
		fmt.Fprintf(stdout, "removed leftovers of run %s\n", r)
	}
	if err != nil {
		fmt.Fprintf(stderr, "localvpc cleanup: %v\n", err)
		return 1
	}
	return 0
}

// describe gives a command's -h what the command does above its flags
// (the flag package's default is a bare "Usage of up:").
func describe(fs *flag.FlagSet, about string) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: localvpc %s [flags]\n\n%s\n\nflags:\n", fs.Name(), about)
		fs.PrintDefaults()
	}
}

// geteuid is os.Geteuid; tests stand in a non-root user.
var geteuid = os.Geteuid

// parseCommand parses a command's flags; ok false means stop with code:
// 0 after -h (help was asked for), 2 for a bad flag or a stray argument.
func parseCommand(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "localvpc %s: unexpected argument %q (flags come before it? see -h)\n", fs.Name(), fs.Arg(0))
		return 2, false
	}
	return 0, true
}

// demoFlags are the demo's settings.
type demoFlags struct {
	scenario string
	binDir   string
	logFile  string
	pods     int
	keepLogs string
	ipv6     bool // demo_ipv6.go
	sgp      bool // demo_sgp.go
	// kubeAPIServer and etcd: the binaries the SGP tour runs.
	kubeAPIServer, etcd string
	sc                  vpcsim.Scenario // read from scenario (not with sgp)
}

// errUsageShown: the flag set has already told the user what was wrong
// with the command line; saying it again would repeat the line.
var errUsageShown = errors.New("command line refused")

// parseDemoFlags writes flag errors and -h to stderr itself (then the
// error is flag.ErrHelp or errUsageShown); others are returned to print.
func parseDemoFlags(args []string, stderr io.Writer) (demoFlags, error) {
	var f demoFlags
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	describe(fs, "starts a two-node VPC (needs root), runs pods and traffic through it, checks what it sees, and removes it all")
	fs.StringVar(&f.scenario, "scenario", "misc/scenarios/two-node.yaml", "vpcsim scenario (YAML) with at least two instances")
	fs.StringVar(&f.binDir, "bin", defaultBinDir(), "directory with the built binaries (make build)")
	fs.StringVar(&f.logFile, "log", filepath.Join(os.TempDir(), "localvpc-demo.log"), "detailed log of the run")
	fs.IntVar(&f.pods, "pods", 12, "pods to start on the first node (more than its first ENI holds, so a second ENI is attached)")
	fs.StringVar(&f.keepLogs, "save-logs", "", "copy the nodes' logs here before cleaning up (always done on failure)")
	fs.BoolVar(&f.ipv6, "ipv6", false, "the IPv6 cluster tour: IPv6 pods on two nodes, IPv6 internet, IPv4 internet through egress-cni")
	fs.BoolVar(&f.sgp, "sgp", false, "the security-groups-for-pods tour on "+sgpScenario+" (ignores -scenario): needs -kube-apiserver and -etcd")
	fs.StringVar(&f.kubeAPIServer, "kube-apiserver", os.Getenv("VPC_CNI_KUBE_APISERVER"), "kube-apiserver binary for -sgp (scripts/build-kube-apiserver.sh builds it)")
	fs.StringVar(&f.etcd, "etcd", os.Getenv("VPC_CNI_ETCD"), "etcd binary for -sgp")
	if code, ok := parseCommand(fs, args); !ok {
		if code == 0 {
			return f, flag.ErrHelp
		}
		return f, errUsageShown
	}
	if err := localvpc.CheckBinDir(f.binDir); err != nil {
		return f, fmt.Errorf("-bin: %w", err)
	}
	if f.pods < 1 || f.pods > 25 {
		return f, fmt.Errorf("-pods %d: want 1 to 25 (an m5.large holds 27 pods)", f.pods)
	}
	if !f.sgp { // the SGP tour has its own scenario
		sc, err := loadDemoScenario(f.scenario)
		if err != nil {
			return f, fmt.Errorf("-scenario: %w", err)
		}
		f.sc = sc
	}
	return f, nil
}

// loadDemoScenario reads the demo's scenario, which must have two
// instances; read with the flags, so a bad one is refused before the run
// takes over its log file.
func loadDemoScenario(path string) (vpcsim.Scenario, error) {
	sc, err := vpcsim.LoadScenario(path)
	if err != nil {
		return sc, err
	}
	if len(sc.Instances) < 2 {
		return sc, fmt.Errorf("scenario %s: the demo needs two instances, it has %d", path, len(sc.Instances))
	}
	return sc, nil
}

// defaultBinDir is bin/ next to the running binary (bin/localvpc).
func defaultBinDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(exe)
}

// newLogger opens the run's detailed log. Two runs share the default path,
// so the file is locked while a run writes it: a second run is refused
// instead of truncating the first one's log under it.
func newLogger(path string) (*slog.Logger, func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("-log: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("log file %s is being written by another localvpc run: pass -log to give this one its own", path)
		}
		return nil, nil, fmt.Errorf("log file %s: lock: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("log file %s: %w", path, err)
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})), func() { _ = f.Close() }, nil
}
