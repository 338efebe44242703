package ipamd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestCleanStopLeavesUpstreamFile: after a clean stop the checkpoint file
// alone holds every live pod and no log is left beside it, so upstream's
// ipamd, which reads only that file, can take the node over (a downgrade,
// docs/compatibility.md).
func TestCleanStopLeavesUpstreamFile(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, cfg: func(c *config.Config) { c.WarmIPTarget = 2; c.IPCooldown = 0 }})
	stop := h.runDaemon()
	cni := rpc.NewCNIBackendClient(dial(t, h.cfg.SocketPath))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	want := map[string]string{}
	for _, id := range []string{"keep-a", "gone", "keep-b"} {
		r, err := cni.AddNetwork(ctx, &rpc.AddNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni"})
		if err != nil {
			t.Fatalf("ADD %s: %v", id, err)
		}
		want[id] = r.IpAllocationMetadata[0].Ipv4Addr
	}
	if _, err := cni.DelNetwork(ctx, &rpc.DelNetworkRequest{ContainerId: "gone", IfName: "eth0", NetworkName: "aws-cni"}); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	delete(want, "gone")
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	path := datastore.CheckpointPath(h.cfg.BackingStore, 0)
	if logs, _ := filepath.Glob(path + ".log*"); len(logs) != 0 {
		t.Errorf("logs left beside the checkpoint after a clean stop: %v", logs)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Read as upstream does: the file's own JSON, nothing else.
	var f struct {
		Version     string `json:"version"`
		Allocations []struct {
			ContainerID string `json:"containerID"`
			IPv4        string `json:"ipv4"`
		} `json:"allocations"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("checkpoint is not JSON: %v", err)
	}
	got := map[string]string{}
	for _, a := range f.Allocations {
		got[a.ContainerID] = a.IPv4
	}
	if f.Version != "vpc-cni-ipam/1" || len(got) != len(want) || got["keep-a"] != want["keep-a"] || got["keep-b"] != want["keep-b"] {
		t.Errorf("checkpoint file after stop: version %q, pods %v; want vpc-cni-ipam/1 with %v", f.Version, got, want)
	}
}
