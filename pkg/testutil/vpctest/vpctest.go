// Package vpctest starts a local VPC for one end-to-end test and always
// removes it: node logs are saved when the test failed, and the test fails
// if any of the run's namespaces is left behind.
package vpctest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// StartContext builds the agent binaries first (agentbin.Dir; minutes on a
// loaded machine) and only then starts the clock: a context for start-up
// with timeout d, so a slow build never eats the start-up time.
func StartContext(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	t.Helper()
	agentbin.Dir(t)
	return context.WithTimeout(context.Background(), d)
}

// Start runs sc as a local VPC with the agent binaries (no agent started
// yet). logDir names the folder under the temp dir where a failed test's
// node logs go.
func Start(t *testing.T, ctx context.Context, sc vpcsim.Scenario, logDir string) *localvpc.VPC {
	t.Helper()
	return StartConfig(t, ctx, localvpc.Config{Scenario: sc}, logDir)
}

// StartConfig is Start with more of the local VPC's configuration (e.g.
// IPv6); BinDir and WorkDir are filled in.
func StartConfig(t *testing.T, ctx context.Context, cfg localvpc.Config, logDir string) *localvpc.VPC {
	t.Helper()
	cfg.BinDir, cfg.WorkDir = agentbin.Dir(t), t.TempDir()
	v, err := localvpc.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start local VPC: %v", err)
	}
	prefix := dataplane.RunPrefix(v.RunID)
	t.Cleanup(func() {
		if t.Failed() {
			dst := filepath.Join(os.TempDir(), logDir, t.Name())
			if err := v.SaveLogs(dst); err == nil {
				t.Logf("node logs saved in %s", dst)
			}
		}
		if err := v.Close(); err != nil {
			t.Errorf("close local VPC: %v", err)
		}
		if left, _ := dataplane.ListNamespaces(prefix); len(left) > 0 {
			t.Errorf("namespaces left behind: %v", left)
		}
	})
	return v
}
