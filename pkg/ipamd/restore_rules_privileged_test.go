package ipamd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// nsPodRules is the fake host with the pod-rule calls made by the real
// host networking inside a test namespace, so the rules a restart leaves
// are read back from the kernel.
type nsPodRules struct {
	*fakeHost
	net  *networkutils.Network
	node ns.NetNS
}

func (h nsPodRules) DeletePodRules(ctx context.Context, ips ...netip.Addr) error {
	return h.node.Do(func(ns.NetNS) error { return h.net.DeletePodRules(ctx, ips...) })
}

func (h nsPodRules) RestorePodRules(ctx context.Context, pods []networkutils.PodRule) error {
	return h.node.Do(func(ns.NetNS) error { return h.net.RestorePodRules(ctx, pods) })
}

// inNS runs a command inside node and returns its trimmed output.
func inNS(t *testing.T, node ns.NetNS, name string, args ...string) string {
	t.Helper()
	var out []byte
	err := node.Do(func(ns.NetNS) error {
		var err error
		out, err = exec.Command(name, args...).CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// podRules lists the node's rules about ip at the to-pod and from-pod
// priorities, as `ip rule` prints them.
func podRules(t *testing.T, node ns.NetNS, ip netip.Addr) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(inNS(t, node, "ip", "rule", "show"), "\n") {
		prio, _, _ := strings.Cut(line, ":")
		if (prio == fmt.Sprint(hostcontract.PriorityToPod) || prio == fmt.Sprint(hostcontract.PriorityFromPod)) &&
			strings.Contains(line, " "+ip.String()+" ") {
			out = append(out, strings.Join(strings.Fields(line), " "))
		}
	}
	slices.Sort(out)
	return out
}

// TestPrivilegedRestoreMainTablePodDropsOldRule: a pod checkpointed while
// its address was on an ENI with table 3 is restored after a restart with
// the address now on the primary ENI (main table). A fresh ADD would leave
// only `to <pod> lookup main` (512): the restart must leave exactly that,
// not the old `from <pod> lookup 3` (1536), which sends the pod's egress
// into table 3 (out eth1 here) once that table serves another ENI.
func TestPrivilegedRestoreMainTablePodDropsOldRule(t *testing.T) {
	node := testutil.NewNS(t)
	h := newHarness(t, harnessOpts{noInit: true})
	ctx := context.Background()
	addrs, err := h.ec2.AssignIPv4(ctx, h.primaryENI(), 1)
	if err != nil {
		t.Fatal(err)
	}
	pod := addrs[0]
	// The node as the pod's ADD left it while its address was on the ENI
	// of table 3: eth0 (main) and eth1 (table 3) lead out, the pod's veth
	// leads in.
	for _, c := range [][]string{
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0-p"}, {"ip", "link", "set", "eth0", "up"}, {"ip", "link", "set", "eth0-p", "up"},
		{"ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1-p"}, {"ip", "link", "set", "eth1", "up"}, {"ip", "link", "set", "eth1-p", "up"},
		{"ip", "link", "add", "enipod", "type", "veth", "peer", "name", "enipod-p"}, {"ip", "link", "set", "enipod", "up"}, {"ip", "link", "set", "enipod-p", "up"},
		{"ip", "route", "add", "default", "dev", "eth0"},
		{"ip", "route", "add", "default", "dev", "eth1", "table", "3"},
		{"ip", "route", "add", pod.String(), "dev", "enipod", "scope", "link"},
		{"ip", "rule", "add", "to", pod.String(), "lookup", "main", "priority", fmt.Sprint(hostcontract.PriorityToPod)},
		{"ip", "rule", "add", "from", pod.String(), "lookup", "3", "priority", fmt.Sprint(hostcontract.PriorityFromPod)},
	} {
		inNS(t, node, c[0], c[1:]...)
	}
	egressDev := func() string {
		out := inNS(t, node, "ip", "-o", "route", "get", "192.0.2.1", "from", pod.String(), "iif", "enipod")
		f := strings.Fields(out)
		if i := slices.Index(f, "dev"); i >= 0 && i+1 < len(f) {
			return f[i+1]
		}
		t.Fatalf("ip route get: no dev in %q", out)
		return ""
	}
	if got := egressDev(); got != "eth1" {
		t.Fatalf("before the restart the pod leaves by %s, want eth1 (table 3): the setup is wrong", got)
	}

	file := fmt.Sprintf(`{"version":"vpc-cni-ipam/1","allocations":[`+
		`{"networkName":"aws-cni","containerID":"sandbox-a","ifName":"eth0","ipv4":"%s","allocationTimestamp":1,`+
		`"metadata":{"k8sPodNamespace":"default","k8sPodName":"web-1","interfacesCount":1}}]}`+"\n", pod)
	if err := os.WriteFile(h.cfg.BackingStore, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	h.n.restore.host = nsPodRules{fakeHost: h.host, net: networkutils.New(nil), node: node}
	if err := h.n.Init(ctx); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if a, ok := h.lookup(0, datastore.Key{NetworkName: "aws-cni", ContainerID: "sandbox-a", IfName: "eth0"}); !ok || a.Addr != pod {
		t.Fatalf("the pod was not restored: %+v %v", a, ok)
	}
	want := []string{fmt.Sprintf("%d: from all to %s lookup main", hostcontract.PriorityToPod, pod)}
	if got := podRules(t, node, pod); !slices.Equal(got, want) {
		t.Errorf("pod rules after the restart:\n  %s\nwant what a fresh ADD on the primary ENI leaves:\n  %s",
			strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if got := egressDev(); got != "eth0" {
		t.Errorf("after the restart the pod leaves by %s, want eth0 (main table, primary ENI)", got)
	}
}

// TestPrivilegedRestoreAfterRuleFlush: after the node's ip rules were
// flushed (the reason restore re-creates rules at all), a restart leaves
// every restored pod the rules a fresh ADD would: `to <pod> lookup main`
// (512) for each, and `from <pod> lookup <table>` (1536) for pods on a
// secondary ENI. Without the 512 rule a pod on a secondary ENI reaches
// the node's other pods through its ENI's table instead of their veths.
func TestPrivilegedRestoreAfterRuleFlush(t *testing.T) {
	node := testutil.NewNS(t)
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	ctx := context.Background()
	pods := map[int]bool{}
	h.setPods(pods, 12) // m5.large: 9 on the primary ENI, 3 on the second
	want := map[netip.Addr][]string{}
	for _, cs := range h.n.Snapshot().Cards {
		for _, e := range cs.ENIs {
			for _, ci := range e.CIDRs {
				for _, a := range ci.Allocations {
					rules := []string{fmt.Sprintf("%d: from all to %s lookup main", hostcontract.PriorityToPod, a.Addr)}
					if e.RouteTableID != hostcontract.MainTable {
						rules = append(rules, fmt.Sprintf("%d: from %s lookup %d", hostcontract.PriorityFromPod, a.Addr, e.RouteTableID))
					}
					slices.Sort(rules)
					want[a.Addr] = rules
				}
			}
		}
	}
	if len(want) != 12 {
		t.Fatalf("%d pods held, want 12", len(want))
	}
	h.connect(fastTimes) // restart onto a node whose rules were flushed
	h.n.restore.host = nsPodRules{fakeHost: h.host, net: networkutils.New(nil), node: node}
	if err := h.n.Init(ctx); err != nil {
		t.Fatalf("Init: %v", err)
	}
	for ip, w := range want {
		if got := podRules(t, node, ip); !slices.Equal(got, w) {
			t.Errorf("pod %s rules after the restart:\n  %s\nwant what a fresh ADD leaves:\n  %s",
				ip, strings.Join(got, "\n  "), strings.Join(w, "\n  "))
		}
	}
}
