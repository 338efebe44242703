package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestE2EDelWhileIpamdDownFreesAddress: kubelet deletes three pods while
// ipamd is down (restarting): one DEL with the result its ADD cached, one
// with no cached result (a runtime that lost its cache), and one whose
// teardown fails (more copies of its to-pod rule than a DEL deletes, as
// older plugins could leave). All three DELs succeed, as upstream's plugin does on an ipamd it cannot reach
// (docs/compatibility.md, "Plugin (aws-cni) and runtime input"), so the
// runtime never retries them. The addresses are not leaked for that:
// once ipamd is back, neither pod holds an address in its checkpoint, and
// the node keeps no route or rule of either (ipamd's orphan sweep
// releases an allocation whose pod's host veth stays absent).
func TestE2EDelWhileIpamdDownFreesAddress(t *testing.T) {
	t.Parallel()
	env := []string{"VPC_CNI_TEST_FAST_INTERVALS=true"}
	c := newCluster(t, env...)
	n := c.n1
	pods := c.pods(n, "ipamddown", 3)
	noResult, failing := pods[1], pods[2]
	addToPodRuleCopies(t, n, failing.IP, 300)
	if err := c.v.StopAgent(n, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(n.Dir, "cni-cache", "results", "aws-cni-"+noResult.ContainerID+"-eth0")
	if err := os.Remove(cache); err != nil {
		t.Fatalf("remove the cached result: %v", err)
	}
	for _, p := range pods {
		if _, err := c.v.DelPod(c.ctx(30*time.Second), p); err != nil {
			t.Errorf("DEL of %s with ipamd down: %v", p.Name, err)
		}
	}
	if len(nodeStateOf(t, n, failing.IP)) == 0 {
		t.Fatalf("the DEL of %s removed all copies of its to-pod rule: its teardown did not fail", failing.Name)
	}
	// Nothing told ipamd: its checkpoint still holds the addresses.
	cp, err := n.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if cp[p.ContainerID] != p.IP {
			t.Fatalf("with ipamd down, the checkpoint has %v for pod %s, want %s still held", cp[p.ContainerID], p.Name, p.IP)
		}
	}
	if err := c.v.StartAgent(c.ctx(90*time.Second), n, env); err != nil {
		t.Fatal(err)
	}
	if err := c.v.WaitReady(c.ctx(90*time.Second), n, nil); err != nil {
		t.Fatal(err)
	}
	freed := testutil.Eventually(context.Background(), 60*time.Second, func() error {
		cp, err := n.Checkpoint()
		if err != nil {
			return err
		}
		for _, p := range pods {
			if a, ok := cp[p.ContainerID]; ok {
				return fmt.Errorf("pod %s still holds %s", p.Name, a)
			}
		}
		return nil
	})
	if freed != nil {
		t.Errorf("60 s after ipamd came back: %v", freed)
	}
	for _, p := range pods {
		for _, l := range nodeStateOf(t, n, p.IP) {
			t.Errorf("node keeps %s of deleted pod %s", l, p.Name)
		}
	}
}

// addToPodRuleCopies adds copies more of the to-pod rule of ip (priority
// 512, lookup main) in n's namespace: without NLM_F_EXCL the kernel adds a
// rule it already has.
func addToPodRuleCopies(t *testing.T, n *localvpc.Node, ip netip.Addr, copies int) {
	t.Helper()
	nsh, err := netns.GetFromPath(n.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	s, err := nl.GetNetlinkSocketAt(nsh, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range copies {
		req := nl.NewNetlinkRequest(unix.RTM_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_ACK)
		msg := nl.NewRtMsg()
		msg.Family = unix.AF_INET
		msg.Dst_len = 32
		msg.Table = unix.RT_TABLE_MAIN
		msg.Type = unix.RTN_UNICAST // FR_ACT_TO_TBL
		msg.Protocol = unix.RTPROT_BOOT
		msg.Scope = unix.RT_SCOPE_UNIVERSE
		req.AddData(msg)
		req.AddData(nl.NewRtAttr(unix.RTA_DST, ip.AsSlice()))
		prio := make([]byte, 4)
		nl.NativeEndian().PutUint32(prio, hostcontract.PriorityToPod)
		req.AddData(nl.NewRtAttr(nl.FRA_PRIORITY, prio))
		req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: {Socket: s}}
		if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
			t.Fatalf("add a copy of rule to %s lookup main: %v", ip, err)
		}
	}
}

// nodeStateOf lists n's routes (main table) and rules that name ip.
func nodeStateOf(t *testing.T, n *localvpc.Node, ip netip.Addr) []string {
	t.Helper()
	h := nodeNetlink(t, n)
	defer h.Close()
	var out []string
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP.Equal(ip.AsSlice()) {
			out = append(out, "route "+r.String())
		}
	}
	rules, err := h.RuleList(netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if (r.Src != nil && r.Src.IP.Equal(ip.AsSlice())) || (r.Dst != nil && r.Dst.IP.Equal(ip.AsSlice())) {
			out = append(out, "rule "+r.String())
		}
	}
	return out
}
