package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// runUp starts the VPC and its agents and keeps them until ctx ends, so a
// developer can look around the nodes with nsenter.
func runUp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, code, ok := parseUpFlags(args, stderr)
	if !ok {
		return code
	}
	err := up(ctx, f, stdout, stderr)
	if err != nil && ctx.Err() != nil {
		// Stopped while the VPC was coming up: the error is only the
		// cancellation seen by whatever step was running (and may name
		// log paths that the clean-up has just removed).
		fmt.Fprintln(stderr, "localvpc up: interrupted before the VPC was up; what it had started is removed")
		return 130
	}
	if err != nil {
		fmt.Fprintf(stderr, "localvpc up: %v\n", err)
		return 1
	}
	return 0
}

// upFlags are up's settings, checked before anything is created.
type upFlags struct {
	scenario, binDir, logFile string
	env                       []string
	sc                        vpcsim.Scenario // read from scenario
}

func parseUpFlags(args []string, stderr io.Writer) (upFlags, int, bool) {
	var f upFlags
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	describe(fs, "starts vpcsim and a node per running instance of the scenario (needs root), prints how to enter\neach node, and keeps them until Ctrl-C, which removes everything")
	fs.StringVar(&f.scenario, "scenario", "misc/scenarios/two-node.yaml", "vpcsim scenario (YAML)")
	fs.StringVar(&f.binDir, "bin", defaultBinDir(), "directory with the built binaries (make build)")
	fs.StringVar(&f.logFile, "log", os.TempDir()+"/localvpc-up.log", "detailed log of the run")
	env := fs.String("env", "", "extra agent environment, comma-separated K=V (e.g. ENABLE_PREFIX_DELEGATION=true)")
	if code, ok := parseCommand(fs, args); !ok {
		return f, code, false
	}
	f.env = splitEnv(*env)
	bad := func(format string, a ...any) (upFlags, int, bool) {
		fmt.Fprintf(stderr, "localvpc up: "+format+"\n", a...)
		return f, 2, false
	}
	for _, kv := range f.env {
		if !strings.Contains(kv, "=") {
			return bad("-env entry %q: want K=V", kv)
		}
	}
	if err := localvpc.CheckBinDir(f.binDir); err != nil {
		return bad("-bin: %v", err)
	}
	// Read here, so that a mistyped path is refused as bad input before
	// the run takes over the log file or cleans up after crashed runs.
	sc, err := vpcsim.LoadScenario(f.scenario)
	if err != nil {
		return bad("-scenario: %v", err)
	}
	f.sc = sc
	return f, 0, true
}

func splitEnv(s string) []string {
	var out []string
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			out = append(out, kv)
		}
	}
	return out
}

func up(ctx context.Context, f upFlags, stdout, stderr io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network and mount namespaces")
	}
	logFile, env := f.logFile, f.env
	log, closeLog, err := newLogger(logFile)
	if err != nil {
		return err
	}
	defer closeLog()
	if _, err := localvpc.CleanupStale(""); err != nil {
		fmt.Fprintf(stderr, "note: leftovers of earlier runs: %v\n", err)
	}
	progress := upProgress{w: stderr, start: time.Now()}
	progress.step("starting vpcsim and the nodes' namespaces (log %s)", logFile)
	v, err := localvpc.Start(ctx, localvpc.Config{Scenario: f.sc, BinDir: f.binDir, Logger: log, SimLogger: log.With("component", "vpcsim")})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := v.Close(); cerr != nil {
			fmt.Fprintf(stderr, "cleanup: %v (run `localvpc cleanup`)\n", cerr)
		} else {
			fmt.Fprintln(stdout, "cleaned up")
		}
	}()
	progress.step("vpcsim up, run %s", v.RunID)
	if err := progress.startAgents(ctx, v, env); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "VPC up (run %s, log %s). Nodes:\n", v.RunID, logFile)
	printNodes(stdout, v.Nodes(), f.binDir)
	fmt.Fprintln(stdout, "Ctrl-C stops everything and cleans up.")
	<-ctx.Done()
	return nil
}

// printNodes tells, per node, how to get into it and how to see its warm
// pool: ipamd's introspection listens on the node's own loopback, so
// ipamctl has to run in the node's network namespace.
func printNodes(w io.Writer, nodes []*localvpc.Node, binDir string) {
	ipamctl := "ipamctl"
	if abs, err := filepath.Abs(filepath.Join(binDir, "ipamctl")); err == nil {
		ipamctl = abs
	}
	for _, n := range nodes {
		pid := "?"
		if p := n.AgentPID(); p > 0 {
			pid = fmt.Sprint(p)
		}
		netns := strings.TrimPrefix(n.NetNS, "/run/netns/")
		fmt.Fprintf(w, "  %s %s primary %s public %v agent pid %s\n", n.Name, n.ID, n.PrimaryIP, n.PublicIP, pid)
		fmt.Fprintf(w, "    enter the node:     nsenter --target %d --mount --net bash\n", n.AnchorPID())
		fmt.Fprintf(w, "    network only:       ip netns exec %s bash\n", netns)
		fmt.Fprintf(w, "    warm pool:          ip netns exec %s %s pool\n", netns, ipamctl)
		fmt.Fprintf(w, "    files and logs:     %s\n", n.Dir)
	}
}
