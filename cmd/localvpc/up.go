package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// runUp starts the VPC and its agents and keeps them until ctx ends, so a
// developer can look around the nodes with nsenter.
func runUp(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	scenario := fs.String("scenario", "misc/scenarios/two-node.yaml", "vpcsim scenario (YAML)")
	binDir := fs.String("bin", defaultBinDir(), "directory with the built binaries (make build)")
	logFile := fs.String("log", os.TempDir()+"/localvpc-up.log", "detailed log of the run")
	env := fs.String("env", "", "extra agent environment, comma-separated K=V (e.g. ENABLE_PREFIX_DELEGATION=true)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := up(ctx, *scenario, *binDir, *logFile, splitEnv(*env)); err != nil {
		fmt.Fprintf(os.Stderr, "localvpc up: %v\n", err)
		return 1
	}
	return 0
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

func up(ctx context.Context, scenario, binDir, logFile string, env []string) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network and mount namespaces")
	}
	for _, kv := range env {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("-env entry %q: want K=V", kv)
		}
	}
	log, closeLog, err := newLogger(logFile)
	if err != nil {
		return err
	}
	defer closeLog()
	if _, err := localvpc.CleanupStale(""); err != nil {
		fmt.Fprintf(os.Stderr, "note: leftovers of earlier runs: %v\n", err)
	}
	sc, err := vpcsim.LoadScenario(scenario)
	if err != nil {
		return err
	}
	v, err := localvpc.Start(ctx, localvpc.Config{Scenario: sc, BinDir: binDir, Logger: log, SimLogger: log.With("component", "vpcsim")})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := v.Close(); cerr != nil {
			fmt.Fprintf(os.Stderr, "cleanup: %v (run `localvpc cleanup`)\n", cerr)
		} else {
			fmt.Println("cleaned up")
		}
	}()
	if err := v.StartAgents(ctx, env, nil); err != nil {
		return err
	}
	fmt.Printf("VPC up (run %s, log %s). Nodes:\n", v.RunID, logFile)
	for _, n := range v.Nodes() {
		pid := "?"
		if p := n.AgentPID(); p > 0 {
			pid = fmt.Sprint(p)
		}
		fmt.Printf("  %s %s primary %s public %v agent pid %s\n", n.Name, n.ID, n.PrimaryIP, n.PublicIP, pid)
		fmt.Printf("    enter the node:     nsenter --target %d --mount --net bash\n", n.AnchorPID())
		fmt.Printf("    network only:       ip netns exec %s bash\n", strings.TrimPrefix(n.NetNS, "/run/netns/"))
		fmt.Printf("    files and logs:     %s\n", n.Dir)
	}
	fmt.Println("Ctrl-C stops everything and cleans up.")
	<-ctx.Done()
	return nil
}
