package localvpc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func startVPC(t *testing.T) *VPC {
	t.Helper()
	testutil.Privileged(t)
	if _, err := os.Stat(filepath.Join(DefaultRefPluginDir, "ptp")); err != nil {
		t.Skipf("reference CNI plugins missing (%v): apt-get install containernetworking-plugins", err)
	}
	sc := simtest.Basic()
	sc.Instances = append(sc.Instances, vpcsim.InstanceSpec{ID: "i-00000000000000002", Type: "m5.large", Subnet: simtest.NodeSubnetBID, Tags: map[string]string{"Name": "node-2"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := Start(ctx, Config{Scenario: sc, WorkDir: t.TempDir()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	prefix := dataplane.RunPrefix(v.RunID)
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left, _ := dataplane.ListNamespaces(prefix); len(left) > 0 {
			t.Errorf("namespaces left after Close: %v", left)
		}
		if _, err := os.Stat(v.Dir); err == nil {
			t.Errorf("run directory %s left after Close", v.Dir)
		}
	})
	return v
}

// A plain ptp + host-local conflist stands in for the installer's, so the
// runtime path (libcni, exec inside the node) is tested with real plugins.
const ptpConflist = `{"cniVersion":"0.4.0","name":"test","plugins":[
 {"type":"ptp","ipam":{"type":"host-local","ranges":[[{"subnet":"10.99.0.0/24"}]]}},
 {"type":"portmap","capabilities":{"portMappings":true},"snat":true}]}`

func TestPrivilegedNodesHavePrivateDirectoriesAndRunPluginsInside(t *testing.T) {
	v := startVPC(t)
	nodes := v.Nodes()
	if len(nodes) != 2 {
		t.Fatalf("nodes = %d, want 2", len(nodes))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := nodes[0]
	// Inside the node, /opt/cni/bin is the node's own directory and eth0 is
	// the node's primary ENI.
	out, stderr, err := n.Exec(ctx, nil, nil, "/bin/sh", "-c", "ls /opt/cni/bin; cat /sys/class/net/eth0/address")
	if err != nil {
		t.Fatalf("exec in node: %v (%s)", err, stderr)
	}
	inst, err := v.Sim.Instance(n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "portmap") || !strings.Contains(string(out), inst.MAC) {
		t.Errorf("inside node %s: got %q, want the reference plugins and eth0 MAC %s", n.ID, out, inst.MAC)
	}
	if _, err := os.Stat("/opt/cni/bin/portmap"); err == nil {
		t.Log("note: the host also has /opt/cni/bin/portmap (not ours)")
	}
	// Everything localvpc starts in a node carries the run marker that
	// stale-run cleanup looks for: the anchor and commands run inside.
	if id, ok := runMarkerOf(n.anchor.Process.Pid); !ok || id != v.RunID {
		t.Errorf("anchor %d: %s = %q (set %v), want the run id %s", n.anchor.Process.Pid, RunEnv, id, ok, v.RunID)
	}
	out, _, err = n.Exec(ctx, []string{"PATH=/usr/bin:/bin"}, nil, "/bin/sh", "-c", "echo $"+RunEnv)
	if err != nil || strings.TrimSpace(string(out)) != v.RunID {
		t.Errorf("command in node sees %s=%q (err %v), want %s", RunEnv, out, err, v.RunID)
	}

	if err := copyFile(filepath.Join(DefaultRefPluginDir, "ptp"), n.HostPath("/opt/cni/bin/ptp")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.HostPath("/etc/cni/net.d/"+ConflistName), []byte(ptpConflist), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := v.AddPod(ctx, n, "default", "web-0")
	if err != nil {
		t.Fatalf("AddPod: %v", err)
	}
	if !p.IP.IsValid() || !strings.HasPrefix(p.IP.String(), "10.99.0.") {
		t.Fatalf("pod IP %v, want one from 10.99.0.0/24", p.IP)
	}
	// host-local kept its state in the node's private /var/lib/cni.
	if _, err := os.Stat(n.HostPath("/var/lib/cni/networks/test/" + p.IP.String())); err != nil {
		t.Errorf("host-local state not in the node's /var/lib/cni: %v", err)
	}
	// The pod's host-side route exists in the node, not in the root namespace.
	if !hasRouteTo(t, n.NetNS, p.IP) {
		t.Errorf("node %s has no route to its pod %s", n.ID, p.IP)
	}
	if rootRoutes, err := netlink.RouteList(nil, netlink.FAMILY_V4); err == nil {
		for _, r := range rootRoutes {
			if r.Dst != nil && r.Dst.IP.Equal(p.IP.AsSlice()) {
				t.Errorf("the root namespace has a route to the pod: %v", r)
			}
		}
	}
	// The pod carries its ADD's cost: the chain's execs, in order, inside
	// the CNI wall time (host-local runs inside ptp, not through us).
	wantPlugins(t, "ADD", p.Added, "ptp", "portmap")
	del, err := v.DelPod(ctx, p)
	if err != nil {
		t.Fatalf("DelPod: %v", err)
	}
	wantPlugins(t, "DEL", del, "portmap", "ptp")
	ver, err := v.CNIVersion(ctx, n, "ptp")
	if err != nil {
		t.Fatalf("CNIVersion: %v", err)
	}
	wantPlugins(t, "VERSION", ver, "ptp")
	if hasRouteTo(t, n.NetNS, p.IP) {
		t.Errorf("route to deleted pod %s still in node", p.IP)
	}
	if _, err := os.Stat(p.NetNS); err == nil {
		t.Errorf("pod netns %s still pinned", p.NetNS)
	}
}

func TestPrivilegedAddPodFailsClearlyWithoutConflist(t *testing.T) {
	v := startVPC(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := v.AddPod(ctx, v.Nodes()[1], "default", "x")
	if err == nil || !strings.Contains(err.Error(), ConflistName) {
		t.Fatalf("AddPod without a conflist: err = %v, want it to name %s", err, ConflistName)
	}
	if left, _ := dataplane.ListNamespaces(dataplane.RunPrefix(v.RunID) + "pod-"); len(left) > 0 {
		t.Errorf("failed AddPod left pod namespaces: %v", left)
	}
}

// A failed ADD is timed too, and leaves nothing behind.
func TestPrivilegedFailedAddIsTimedAndRemoved(t *testing.T) {
	v := startVPC(t)
	n := v.Nodes()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []string{"ptp", "fail"} {
		src := filepath.Join(DefaultRefPluginDir, p)
		if p == "fail" {
			src = "/bin/false"
		}
		if err := copyFile(src, n.HostPath("/opt/cni/bin/"+p)); err != nil {
			t.Fatal(err)
		}
	}
	conf := strings.Replace(ptpConflist, `"type":"portmap"`, `"type":"fail"`, 1)
	if err := os.WriteFile(n.HostPath("/etc/cni/net.d/"+ConflistName), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := v.AddPod(ctx, n, "default", "doomed")
	var ae *AddError
	if !errors.As(err, &ae) {
		t.Fatalf("AddPod through a failing plugin: err = %v, want an *AddError", err)
	}
	wantPlugins(t, "failed ADD", ae.Timing, "ptp", "fail")
	if left, _ := dataplane.ListNamespaces(dataplane.RunPrefix(v.RunID) + "pod-"); len(left) > 0 {
		t.Errorf("failed AddPod left pod namespaces: %v", left)
	}
	if got := v.Pods(); len(got) != 0 {
		t.Errorf("failed AddPod left %d pods registered", len(got))
	}
}

func wantPlugins(t *testing.T, op string, tm Timing, want ...string) {
	t.Helper()
	var got []string
	var sum time.Duration
	for _, p := range tm.Plugins {
		got = append(got, p.Plugin)
		sum += p.Took
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s ran plugins %v, want %v", op, got, want)
	}
	if tm.CNI <= 0 || sum > tm.CNI {
		t.Errorf("%s took %v with plugin execs summing to %v: want the execs inside a positive total", op, tm.CNI, sum)
	}
}

func TestPrivilegedAgentLifecycle(t *testing.T) {
	v := startVPC(t)
	n := v.Nodes()[0]
	ctx := context.Background()
	// A long-running stand-in agent that exits on SIGTERM.
	if err := n.startAgent(ctx, nil, "", "/bin/sh", "-c", "echo started; exec sleep 60"); err != nil {
		t.Fatal(err)
	}
	if n.AgentPID() == 0 {
		t.Fatal("agent not running after startAgent")
	}
	if err := n.startAgent(ctx, nil, "", "/bin/true"); err == nil {
		t.Error("second startAgent while one runs: no error")
	}
	done, _ := n.AgentExited()
	if err := v.StopAgent(n, 9, time.Second); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	default:
		t.Fatal("agent still running after StopAgent")
	}
	log, _ := os.ReadFile(filepath.Join(n.Dir, "agent.log"))
	if !strings.Contains(string(log), "started") {
		t.Errorf("agent output not captured: %q", log)
	}
}

func hasRouteTo(t *testing.T, nsPath string, ip interface{ AsSlice() []byte }) bool {
	t.Helper()
	nsh, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP.Equal(ip.AsSlice()) {
			return true
		}
	}
	return false
}
