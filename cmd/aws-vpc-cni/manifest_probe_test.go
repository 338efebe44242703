package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"sigs.k8s.io/yaml"
)

// TestManifestProbes runs the probe commands of misc/aws-k8s-cni.yaml
// (pointed at a test server) through this binary's probe: while ipamd
// answers NOT_SERVING (its checkpoint cannot be written) the readiness
// probe fails and the liveness probe passes, so the node leaves service
// without a restart loop; with ipamd gone both fail.
func TestManifestProbes(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "misc", "aws-k8s-cni.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var probes map[string][]string
	for _, doc := range strings.Split(string(b), "\n---") {
		var ds struct {
			Kind string
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Name           string
							LivenessProbe  struct{ Exec struct{ Command []string } }
							ReadinessProbe struct{ Exec struct{ Command []string } }
						}
					}
				}
			}
		}
		if err := yaml.Unmarshal([]byte(doc), &ds); err != nil {
			t.Fatal(err)
		}
		for _, c := range ds.Spec.Template.Spec.Containers {
			if ds.Kind == "DaemonSet" && c.Name == "aws-node" {
				probes = map[string][]string{"liveness": c.LivenessProbe.Exec.Command, "readiness": c.ReadinessProbe.Exec.Command}
			}
		}
	}
	if probes == nil {
		t.Fatal("no aws-node container in a DaemonSet of misc/aws-k8s-cni.yaml")
	}
	addr, hs := serveHealth(t, true)
	missing := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	run := func(cmd []string, target string) int {
		if len(cmd) == 0 || filepath.Base(cmd[0]) != "grpc-health-probe" {
			t.Fatalf("probe command %q does not run grpc-health-probe", cmd)
		}
		var args []string
		for _, a := range cmd[1:] {
			switch {
			case strings.HasPrefix(a, "-addr="):
				a = "-addr=" + target
			case strings.HasPrefix(a, "-connect-timeout=") && target == missing:
				a = "-connect-timeout=300ms" // nothing will answer: keep the test short
			}
			args = append(args, a)
		}
		var out, errb bytes.Buffer
		return runProbe(context.Background(), args, &out, &errb)
	}
	for _, tc := range []struct {
		status          healthpb.HealthCheckResponse_ServingStatus
		target          string
		alive, readyish int
	}{
		{healthpb.HealthCheckResponse_SERVING, addr, 0, 0},
		{healthpb.HealthCheckResponse_NOT_SERVING, addr, 0, probeUnhealthy},
		{healthpb.HealthCheckResponse_NOT_SERVING, missing, probeConnFailed, probeConnFailed},
	} {
		hs.SetServingStatus("", tc.status)
		if got := run(probes["liveness"], tc.target); got != tc.alive {
			t.Errorf("%v at %s: liveness exit %d, want %d", tc.status, tc.target, got, tc.alive)
		}
		if got := run(probes["readiness"], tc.target); got != tc.readyish {
			t.Errorf("%v at %s: readiness exit %d, want %d", tc.status, tc.target, got, tc.readyish)
		}
	}
}
