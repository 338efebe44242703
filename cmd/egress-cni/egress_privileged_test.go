package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

func add(t *testing.T, tp *topo, l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) *current.Result {
	t.Helper()
	var res *current.Result
	err := tp.inNode(func() error {
		r, err := tp.cni(t).AddNetworkList(ctx, l, rt)
		if err != nil {
			return err
		}
		res, err = current.NewResultFromResult(r)
		return err
	})
	if err != nil {
		t.Fatalf("ADD %s: %v", rt.ContainerID, err)
	}
	return res
}

func del(t *testing.T, tp *topo, l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) {
	t.Helper()
	if err := tp.inNode(func() error { return tp.cni(t).DelNetworkList(ctx, l, rt) }); err != nil {
		t.Fatalf("DEL %s: %v", rt.ContainerID, err)
	}
}

func natLines(network, id, chain, podIP, nodeIP, multicast string) []string {
	c := fmt.Sprintf(`-m comment --comment "name: \"%s\" id: \"%s\""`, network, id)
	return []string{
		"-N " + chain,
		fmt.Sprintf("-A POSTROUTING -s %s %s -j %s", podIP, c, chain),
		fmt.Sprintf("-A %s -d %s %s -j ACCEPT", chain, multicast, c),
		fmt.Sprintf("-A %s %s -j SNAT --to-source %s --random-fully", chain, c, nodeIP),
	}
}

// storeEntries lists the address files of the egress store.
func storeEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, "aws-cni"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestPrivilegedV4Egress: an IPv6-only pod (wired by ptp) gets IPv4
// egress through egress-cni, exec'd by libcni as a runtime does; the
// kernel state is exactly the expected one; IPv4 traffic reaches the
// internet as the node's address; DEL (twice) leaves nothing.
func TestPrivilegedV4Egress(t *testing.T) {
	for _, v := range []string{"0.4.0", "1.0.0"} {
		t.Run(v, func(t *testing.T) {
			tp := newTopo(t)
			nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
			pod := testutil.NewNS(t)
			podBefore := snapshot(t, pod.Path())
			l := list(t, v, tp.ptpEntry(true), tp.egressEntry(false, ""))
			rt := runtimeConf("ctr-v4", pod.Path())
			res := add(t, tp, l, rt)

			hostVeth := egress.HostVethName("ctr-v4", "eth0")
			var names []string
			for _, i := range res.Interfaces {
				names = append(names, i.Name+"@"+i.Sandbox)
			}
			if want := hostVeth + "@"; !strings.Contains(strings.Join(names, " "), want) || !strings.Contains(strings.Join(names, " "), "v4if0@"+pod.Path()) {
				t.Errorf("result interfaces %v lack %s and v4if0", names, hostVeth)
			}
			for _, ip := range res.IPs {
				if ip.Address.IP.To4() != nil {
					t.Errorf("egress-cni added an IP to the result: %v (upstream adds interfaces only)", ip)
				}
			}
			wantLines(t, "pod egress state", only(snapshot(t, pod.Path()), "v4if0"), []string{
				"link v4if0 veth up mtu 9001",
				"addr v4if0 169.254.172.2/22",
				"route main 169.254.172.1/32 dev v4if0 scope link",
				"route main 0.0.0.0/0 via 169.254.172.1 dev v4if0",
			})
			wantLines(t, "node egress state", only(snapshot(t, tp.node.Path()), hostVeth), []string{
				"link " + hostVeth + " veth up mtu 9001",
				"addr " + hostVeth + " 169.254.172.1/32",
				"route main 169.254.172.2/32 dev " + hostVeth + " scope link",
			})
			chain := egress.ChainName(egress.V4, "aws-cni", "ctr-v4")
			wantLines(t, "nat rules", only(tp.nat(t, false), "CNI-E4-"), natLines("aws-cni", "ctr-v4", chain, "169.254.172.2/32", nodeV4, "224.0.0.0/4"))

			if src, err := seenFrom(pod, tp.internet, internetV4); err != nil || src != nodeV4 {
				t.Errorf("IPv4 from the IPv6 pod: seen from %q (%v), want the node's %s", src, err, nodeV4)
			}
			if err := tp.inNode(func() error { return tp.cni(t).CheckNetworkList(ctx, l, rt) }); err != nil {
				t.Errorf("CHECK: %v", err)
			}
			del(t, tp, l, rt)
			del(t, tp, l, rt)
			wantLines(t, "node after DEL", snapshot(t, tp.node.Path()), nodeBefore)
			wantLines(t, "pod after DEL", snapshot(t, pod.Path()), podBefore)
			wantLines(t, "nat after DEL", tp.nat(t, false), natBefore)
			if e := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(e) != 0 {
				t.Errorf("addresses still held after DEL: %v", e)
			}
		})
	}
}

// TestPrivilegedV6Egress: an IPv4-only pod gets IPv6 egress (a ULA SNATed
// to the node's IPv6); its main interface loses IPv6.
func TestPrivilegedV6Egress(t *testing.T) {
	tp := newTopo(t)
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, true)
	pod := testutil.NewNS(t)
	l := list(t, "1.0.0", tp.ptpEntry(false), tp.egressEntry(true, ""))
	rt := runtimeConf("ctr-v6", pod.Path())
	res := add(t, tp, l, rt)
	hostVeth := egress.HostVethName("ctr-v6", "eth0")
	var hostMAC string
	for _, i := range res.Interfaces {
		if i.Name == hostVeth {
			hostMAC = i.Mac
		}
	}
	wantLines(t, "pod egress state", only(snapshot(t, pod.Path()), "v6if0"), []string{
		"link v6if0 veth up mtu 9001",
		"addr v6if0 fd00::ac:2/118",
		"route main ::/0 via fe80::1 dev v6if0",
		"neigh v6if0 fe80::1 lladdr " + hostMAC + " permanent",
	})
	wantLines(t, "node egress state", only(snapshot(t, tp.node.Path()), hostVeth), []string{
		"link " + hostVeth + " veth up mtu 9001",
		"route main fd00::ac:2/128 dev " + hostVeth,
	})
	chain := egress.ChainName(egress.V6, "aws-cni", "ctr-v6")
	wantLines(t, "ip6 nat rules", only(tp.nat(t, true), "CNI-E6-"), natLines("aws-cni", "ctr-v6", chain, "fd00::ac:2/128", nodeV6, "ff00::/8"))
	var disabled []byte
	_ = pod.Do(func(ns.NetNS) error {
		disabled, _ = os.ReadFile("/proc/sys/net/ipv6/conf/eth0/disable_ipv6")
		return nil
	})
	if string(disabled) != "1\n" {
		t.Errorf("pod eth0 disable_ipv6 = %q, want 1", disabled)
	}
	if src, err := seenFrom(pod, tp.internet, internetV6); err != nil || src != nodeV6 {
		t.Errorf("IPv6 from the IPv4 pod: seen from %q (%v), want the node's %s", src, err, nodeV6)
	}
	if err := tp.inNode(func() error { return tp.cni(t).CheckNetworkList(ctx, l, rt) }); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	del(t, tp, l, rt)
	wantLines(t, "node after DEL", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "ip6 nat after DEL", tp.nat(t, true), natBefore)
}

// TestPrivilegedDelWithoutState: DEL with the netns gone, DEL of a pod
// never added, and DEL after the store was lost all succeed and remove
// what exists.
func TestPrivilegedDelWithoutState(t *testing.T) {
	tp := newTopo(t)
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
	l := list(t, "1.0.0", loopbackEntry, tp.egressEntry(false, ""))

	// The runtime destroyed the sandbox before DEL.
	pod, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	// Removed here too if the test fails before it removes it itself.
	t.Cleanup(func() { _ = pod.Close(); _ = testutils.UnmountNS(pod) })
	rt := runtimeConf("ctr-gone", pod.Path())
	add(t, tp, l, rt)
	_ = pod.Close()
	if err := testutils.UnmountNS(pod); err != nil {
		t.Fatal(err)
	}
	del(t, tp, l, rt)
	del(t, tp, l, rt)

	// A DEL for a container this node never saw.
	del(t, tp, l, runtimeConf("ctr-never", "/var/run/netns/vpccni-egress-missing"))

	// The store was wiped (tmpfs /run after a reboot) but rules remain.
	pod2 := testutil.NewNS(t)
	rt2 := runtimeConf("ctr-lost", pod2.Path())
	add(t, tp, l, rt2)
	if err := os.RemoveAll(filepath.Join(tp.dataDir, "egress-v4-ipam")); err != nil {
		t.Fatal(err)
	}
	del(t, tp, l, rt2)

	wantLines(t, "node after DELs", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "nat after DELs", tp.nat(t, false), natBefore)
	if e := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(e) != 0 {
		t.Errorf("addresses held: %v", e)
	}
}

// TestPrivilegedRestartKeepsAllocations: allocations live on disk; a later
// plugin run (every run is a new process) sees them: a repeated ADD gets
// the same address, a new pod a different one, CHECK of an older pod
// passes.
func TestPrivilegedRestartKeepsAllocations(t *testing.T) {
	tp := newTopo(t)
	l := list(t, "1.0.0", loopbackEntry, tp.egressEntry(false, ""))
	addr := func(res *current.Result) string {
		for _, i := range res.Interfaces {
			if i.Name == "v4if0" {
				return i.Mac
			}
		}
		return ""
	}
	podA, podB := testutil.NewNS(t), testutil.NewNS(t)
	rtA, rtB := runtimeConf("ctr-a", podA.Path()), runtimeConf("ctr-b", podB.Path())
	add(t, tp, l, rtA)
	macB := addr(add(t, tp, l, rtB))
	held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam"))
	if len(held) != 2 {
		t.Fatalf("held %v", held)
	}
	// Duplicate ADD of b: same address, rewired (new veth).
	add(t, tp, l, rtB)
	if again := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); strings.Join(again, ",") != strings.Join(held, ",") {
		t.Errorf("duplicate ADD changed the allocations: %v → %v", held, again)
	}
	if macB == "" {
		t.Error("no v4if0 in b's result")
	}
	wantLines(t, "b after duplicate ADD", only(snapshot(t, podB.Path()), "addr v4if0"), []string{"addr v4if0 169.254.172.3/22"})
	podC := testutil.NewNS(t)
	add(t, tp, l, runtimeConf("ctr-c", podC.Path()))
	wantLines(t, "c", only(snapshot(t, podC.Path()), "addr v4if0"), []string{"addr v4if0 169.254.172.4/22"})
	for _, rt := range []*libcni.RuntimeConf{rtA, rtB} {
		if err := tp.inNode(func() error { return tp.cni(t).CheckNetworkList(ctx, l, rt) }); err != nil {
			t.Errorf("CHECK %s: %v", rt.ContainerID, err)
		}
	}
	if src, err := seenFrom(podA, tp.internet, internetV4); err != nil || src != nodeV4 {
		t.Errorf("a after the others' ADDs: seen from %q (%v)", src, err)
	}
}

// TestPrivileged200Pods: 200 pods ADD and DEL leave no address, link or
// rule behind.
func TestPrivileged200Pods(t *testing.T) {
	tp := newTopo(t)
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
	l := list(t, "1.0.0", loopbackEntry, tp.egressEntry(false, ""))
	const n, workers = 200, 4
	rts := make([]*libcni.RuntimeConf, n)
	start := time.Now()
	defer func() { t.Logf("200 pods: %s in all", time.Since(start).Round(time.Millisecond)) }()
	for i := range n {
		rts[i] = runtimeConf(fmt.Sprintf("ctr-%03d", i), testutil.NewNS(t).Path())
	}
	run := func(f func(*libcni.RuntimeConf) error) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		next := make(chan *libcni.RuntimeConf)
		for range workers {
			wg.Go(func() {
				for rt := range next {
					if err := tp.inNode(func() error { return f(rt) }); err != nil {
						errs <- fmt.Errorf("%s: %w", rt.ContainerID, err)
					}
				}
			})
		}
		for _, rt := range rts {
			next <- rt
		}
		close(next)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	t.Logf("namespaces: %s", time.Since(start).Round(time.Millisecond))
	phase := time.Now()
	run(func(rt *libcni.RuntimeConf) error { _, err := tp.cni(t).AddNetworkList(ctx, l, rt); return err })
	t.Logf("ADDs: %s", time.Since(phase).Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}
	if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != n {
		t.Errorf("%d addresses held after %d ADDs", len(held), n)
	}
	if chains := only(tp.nat(t, false), "-N CNI-E4-"); len(chains) != n {
		t.Errorf("%d chains after %d ADDs", len(chains), n)
	}
	phase = time.Now()
	run(func(rt *libcni.RuntimeConf) error { return tp.cni(t).DelNetworkList(ctx, l, rt) })
	t.Logf("DELs: %s", time.Since(phase).Round(time.Millisecond))
	wantLines(t, "node after 200 DELs", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "nat after 200 DELs", tp.nat(t, false), natBefore)
	if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 0 {
		t.Errorf("addresses held after DEL: %v", held)
	}
}

// TestPrivilegedExhaustedRange: with every address of the real /22 held,
// ADD fails with code 101 naming the range, and nothing is wired.
func TestPrivilegedExhaustedRange(t *testing.T) {
	tp := newTopo(t)
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
	dir := filepath.Join(tp.dataDir, "egress-v4-ipam", "aws-cni")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng, _ := egress.NewRange("169.254.172.0/22", "", "", "")
	for a := rng.Start.Next(); ; a = a.Next() { // .1 is the gateway
		if err := os.WriteFile(filepath.Join(dir, a.String()), []byte("other\r\neth0"), 0o600); err != nil {
			t.Fatal(err)
		}
		if a == rng.End {
			break
		}
	}
	pod := testutil.NewNS(t)
	podBefore := snapshot(t, pod.Path())
	l := list(t, "1.0.0", loopbackEntry, tp.egressEntry(false, ""))
	err := tp.inNode(func() error {
		_, err := tp.cni(t).AddNetworkList(ctx, l, runtimeConf("ctr-full", pod.Path()))
		return err
	})
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != ErrNoAddress || !strings.Contains(ce.Error(), "169.254.172.0/22") {
		t.Fatalf("ADD on a full range: %v, want code %d naming 169.254.172.0/22", err, ErrNoAddress)
	}
	wantLines(t, "pod after failed ADD", snapshot(t, pod.Path()), podBefore)
	wantLines(t, "node after failed ADD", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "nat after failed ADD", tp.nat(t, false), natBefore)
}

// TestPrivilegedFailureMidway: SNAT fails after the veth exists (no
// iptables on PATH); ADD fails with 103 and undoes the veth and the
// address. (A missing netns is refused before anything is made:
// TestPrivilegedAddRefusesBadNetNS.)
func TestPrivilegedFailureMidway(t *testing.T) {
	tp := newTopo(t)
	nodeBefore := snapshot(t, tp.node.Path())
	pod := testutil.NewNS(t)
	podBefore := snapshot(t, pod.Path())
	conf := tp.egressEntry(false, "")
	for _, tc := range []struct{ netns, path string }{
		{pod.Path(), t.TempDir()},
	} {
		e := execPlugin(t, tp, "ADD", "ctr-mid", tc.netns, tc.path, conf)
		if e == nil || e.Code != ErrWiring {
			t.Fatalf("ADD in %s with PATH %s: %v, want code %d", tc.netns, tc.path, e, ErrWiring)
		}
		wantLines(t, "pod after failed ADD", snapshot(t, pod.Path()), podBefore)
		wantLines(t, "node after failed ADD", snapshot(t, tp.node.Path()), nodeBefore)
		if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 0 {
			t.Errorf("failed ADD holds %v", held)
		}
	}
}

// TestPrivilegedGC: CNI 1.1 GC with the runtime's valid attachments
// removes the egress wiring of every other pod (address, chain, veth) and
// leaves the valid one working.
func TestPrivilegedGC(t *testing.T) {
	tp := newTopo(t)
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
	l := list(t, "1.0.0", loopbackEntry, tp.egressEntry(false, ""))
	pods := map[string]ns.NetNS{}
	for _, id := range []string{"ctr-gone-1", "ctr-live", "ctr-gone-2"} {
		pods[id] = testutil.NewNS(t)
		add(t, tp, l, runtimeConf(id, pods[id].Path()))
	}
	gcNetwork(t, tp, "aws-cni", tp.egressEntry(false, ""), "ctr-live")
	if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 1 {
		t.Errorf("after GC the store holds %v, want the live pod's address only", held)
	}
	live := egress.HostVethName("ctr-live", "eth0")
	var liveNode []string
	for _, line := range snapshot(t, tp.node.Path()) {
		if !strings.Contains(line, live) {
			liveNode = append(liveNode, line)
		}
	}
	wantLines(t, "node after GC, live pod aside", liveNode, nodeBefore)
	liveChain := egress.ChainName(egress.V4, "aws-cni", "ctr-live")
	var liveNat []string
	for _, line := range tp.nat(t, false) {
		if !strings.Contains(line, liveChain) {
			liveNat = append(liveNat, line)
		}
	}
	wantLines(t, "nat after GC, live pod aside", liveNat, natBefore)
	if src, err := seenFrom(pods["ctr-live"], tp.internet, internetV4); err != nil || src != nodeV4 {
		t.Errorf("the live pod after GC: seen from %q (%v)", src, err)
	}
}

// TestPrivilegedStdinOverTheCap: a runtime hands egress-cni a valid netconf
// of 2 MiB (one unknown key padding it). ADD and DEL fail with the CNI
// error naming stdin and its limit, and nothing is wired or allocated.
func TestPrivilegedStdinOverTheCap(t *testing.T) {
	tp := newTopo(t)
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
	pod := testutil.NewNS(t)
	podBefore := snapshot(t, pod.Path())
	var entry map[string]any
	if err := json.Unmarshal([]byte(tp.egressEntry(false, "")), &entry); err != nil {
		t.Fatal(err)
	}
	entry["pad"] = strings.Repeat("x", 2<<20)
	big, _ := json.Marshal(entry)
	l := list(t, "1.0.0", loopbackEntry, string(big))
	rt := runtimeConf("ctr-big", pod.Path())
	for _, cmd := range []string{"ADD", "DEL"} {
		err := tp.inNode(func() error {
			if cmd == "DEL" {
				return tp.cni(t).DelNetworkList(ctx, l, rt)
			}
			_, err := tp.cni(t).AddNetworkList(ctx, l, rt)
			return err
		})
		var ce *types.Error
		if !errors.As(err, &ce) || ce.Code != types.ErrInvalidNetworkConfig || !strings.Contains(ce.Msg, "stdin (the network configuration) is over 1048576 bytes") {
			t.Fatalf("%s with a 2 MiB netconf: %v, want code %d naming stdin and its limit", cmd, err, types.ErrInvalidNetworkConfig)
		}
		wantLines(t, "pod after "+cmd, snapshot(t, pod.Path()), podBefore)
		wantLines(t, "node after "+cmd, snapshot(t, tp.node.Path()), nodeBefore)
		wantLines(t, "nat after "+cmd, tp.nat(t, false), natBefore)
		if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 0 {
			t.Errorf("%s with a 2 MiB netconf holds %v", cmd, held)
		}
	}
}
