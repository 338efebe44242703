// Command vpccni-bench measures the figures of bench/README.md in a local VPC
// (pkg/localvpc): CNI ADD/DEL latency with a warm pool, pod churn, node
// start to first pod, a burst of pods on a fresh node under realistic EC2
// timing, EC2 calls per 100 pods, idle addresses, ipamd memory, restart to
// ready, and the datastore's cost per operation. It prints a table (each
// figure with a footnote saying how it was measured), writes the figures to
// a JSON file and draws the churn node's pool over time as an SVG.
//
//	sudo bin/vpccni-bench [-quick] [-pods 1000] [-out bench/results.json] [-svg bench/pool.svg]
//
// `make bench` runs it. It needs root (network and mount namespaces) and
// the binaries of `make build`; nothing changes in the machine's own
// network namespace, and everything it creates is removed on exit, on
// failure and on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/version"
)

func main() { os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr)) }

type options struct {
	out, svg, bin, repo, logFile, agent string
	floor                               string
	nodeLogs                            string
	pods, only                          int
	churn, timeout                      time.Duration
	quick, goBench                      bool
	sbs                                 sbsOptions // sidebyside_main.go
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("vpccni-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.out, "out", "bench/results.json", "where to write the figures (JSON)")
	fs.StringVar(&o.svg, "svg", "bench/pool.svg", "where to draw the churn node's pool over time (SVG)")
	fs.StringVar(&o.bin, "bin", "bin", "directory with the binaries of `make build` (aws-vpc-cni, ipamd, aws-cni)")
	fs.StringVar(&o.repo, "repo", ".", "module root, for the datastore's Go benchmark")
	fs.StringVar(&o.logFile, "log", filepath.Join(os.TempDir(), "vpccni-bench.log"), "detailed log of the run")
	fs.StringVar(&o.agent, "agent", "installer", "how nodes run the agent: installer (aws-vpc-cni, as the aws-node container does) or ipamd (ipamd alone; localvpc installs the plugin and writes the conflist)")
	fs.IntVar(&o.pods, "pods", 1000, "pods created and deleted for the ADD/DEL latency figure (-quick: 20)")
	fs.DurationVar(&o.churn, "churn", 60*time.Second, "length of the measured churn (-quick: 10s)")
	fs.DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up (and clean up) after this long (default 15m, 35m with a compare agent)")
	fs.BoolVar(&o.quick, "quick", false, "a fast smoke run with tiny sizes")
	fs.BoolVar(&o.goBench, "gobench", true, "run the datastore's Go benchmark (needs the go tool)")
	fs.StringVar(&o.nodeLogs, "node-logs", "", "copy the nodes' logs (ipamd, plugin, agent) to this directory before the local VPC is removed, even when every figure was measured")
	fs.StringVar(&o.floor, "floor", "", "the kernel floor binary for figure 11 (cmd/vpccni-bench/floor built static; default: floor in -bin)")
	fs.IntVar(&o.only, "figure", 0, "measure only this figure (with whatever its phase measures beside it), e.g. -figure 4")
	o.sbs.register(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.quick && !set["pods"] {
		o.pods = 20
	}
	if o.quick && !set["churn"] {
		o.churn = 10 * time.Second
	}
	if o.sbs.compareIPAMD != "" && !set["timeout"] {
		o.timeout = 35 * time.Minute // every VPC figure twice, then the scenario's four runs
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.pods < 1:
		return o, fmt.Errorf("-pods %d: want at least 1", o.pods)
	case o.churn < time.Second:
		return o, fmt.Errorf("-churn %s: want at least 1s", o.churn)
	case o.timeout <= 0:
		return o, fmt.Errorf("-timeout %s: want a positive duration", o.timeout)
	case o.agent != "ipamd" && o.agent != "installer":
		return o, fmt.Errorf("-agent %q: want ipamd or installer", o.agent)
	case o.only < 0:
		return o, fmt.Errorf("-figure %d: want a figure number", o.only)
	}
	return o, o.sbs.validate()
}

func runMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "vpccni-bench: %v\n", err)
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "vpccni-bench: needs root (it creates network and mount namespaces); run `sudo make bench`")
		return 1
	}
	logf, err := os.OpenFile(o.logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "vpccni-bench: log file: %v\n", err)
		return 1
	}
	defer logf.Close()
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	res, sbsTable, err := benchmarkAll(ctx, o, log, stderr) // sidebyside_main.go
	if res == nil {
		fmt.Fprintf(stderr, "vpccni-bench: %v\n", err)
		return 1
	}
	if err := writeOutputs(res, o, stdout); err != nil {
		fmt.Fprintf(stderr, "vpccni-bench: %v\n", err)
		return 1
	}
	sbsTable(stdout)
	missing := 0
	for _, f := range res.Figures {
		if f.Error != "" {
			missing++
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "vpccni-bench: stopped early: %v (details in %s)\n", err, o.logFile)
		return 1
	case missing > 0:
		fmt.Fprintf(stderr, "vpccni-bench: %d of %d figures not measured (details in %s)\n", missing, len(res.Figures), o.logFile)
		return 1
	}
	return 0
}

// benchmark prepares the binaries and measures. It returns results even
// when the run stopped early, with the missing figures marked.
func benchmark(ctx context.Context, o options, log *slog.Logger, progress io.Writer) (*bench.Results, error) {
	binDir, cleanup, err := prepareBinDir(o.bin, o.agent)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return nil, fmt.Errorf("-repo: %w", err)
	}
	cfg := defaultConfig(o.quick, o.pods, o.churn)
	cfg.BinDir, cfg.RepoDir, cfg.Agent, cfg.Log, cfg.Progress = binDir, repo, o.agent, log, progress
	cfg.Only, cfg.Kube, cfg.NodeLogs = o.only, true, o.nodeLogs
	if !o.goBench {
		cfg.GoBenchTime = ""
	}
	cfg.FloorBin = o.floor
	if cfg.FloorBin == "" {
		cfg.FloorBin = filepath.Join(o.bin, "floor")
	}
	if cfg.Compare, err = o.sbs.compareBinaries(); err != nil {
		return nil, err
	}
	res, err := measure(ctx, cfg)
	res.Host.Version = version.Version
	return res, err
}

// prepareBinDir returns a directory holding only what the chosen agent
// mode needs, because localvpc picks its mode from the binaries present:
// with agent "ipamd", links to ipamd and aws-cni in a temporary directory.
func prepareBinDir(bin, agent string) (string, func(), error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return "", nil, fmt.Errorf("-bin: %w", err)
	}
	need := []string{localvpc.IPAMDBin, localvpc.PluginBin}
	if agent == "installer" {
		need = []string{localvpc.InstallerBin, localvpc.IPAMDBin, localvpc.PluginBin}
	}
	for _, b := range need {
		if st, err := os.Stat(filepath.Join(abs, b)); err != nil || st.Mode().Perm()&0o111 == 0 {
			return "", nil, fmt.Errorf("-bin %s: no executable %s (run `make build`)", bin, b)
		}
	}
	if agent == "installer" {
		return abs, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "vpccni-bench-bin-")
	if err != nil {
		return "", nil, fmt.Errorf("bin directory: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) } // only links inside
	for _, b := range need {
		if err := os.Symlink(filepath.Join(abs, b), filepath.Join(dir, b)); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("bin directory: %w", err)
		}
	}
	return dir, cleanup, nil
}

// writeOutputs prints the table and writes the JSON file and the plot.
func writeOutputs(res *bench.Results, o options, stdout io.Writer) error {
	title := "vpc-cni bench, ours alone (no COMPARE_IPAMD/COMPARE_PLUGIN)"
	if res.CompareAgent != "" {
		title = "vpc-cni bench, side by side with " + res.CompareAgent
	}
	if res.Quick {
		title += " (quick smoke run: tiny sizes, figures not comparable)"
	}
	fmt.Fprintf(stdout, "\n%s — %s, %d CPUs, kernel %s, %s, took %.0f s, load average %.1f at the start and %.1f at the end\n\n", title,
		res.Started.Format("2006-01-02 15:04 UTC"), res.Host.CPUs, res.Host.Kernel, res.Host.GoVersion, res.ElapsedSeconds, res.Host.Load[0], res.Host.Load[1])
	if err := bench.WriteTable(stdout, res); err != nil {
		return err
	}
	if err := writeFile(o.out, func(w io.Writer) error { return bench.WriteJSON(w, res) }); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nfigures: %s\n", o.out)
	if res.Pool == nil {
		fmt.Fprintln(stdout, "plot: not drawn (the churn run did not happen)")
		return nil
	}
	if err := writeFile(o.svg, func(w io.Writer) error { return bench.WritePoolSVG(w, *res.Pool) }); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "plot:    %s\n", o.svg)
	return nil
}

// writeFile writes atomically (temp file, then rename).
func writeFile(path string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer os.Remove(f.Name()) // gone after the rename; removes a failed write
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
