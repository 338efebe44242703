package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedAddRefusesHostileIfName: a CNI_IFNAME that is not UTF-8,
// or that holds '%' (a pattern to the kernel: no interface has such a
// name), is refused on ADD with code 4 quoting it, before an address is
// taken; DEL with it succeeds. A non-UTF-8 name used to be wired and
// stored as it came, but a runtime's GC lists valid attachments in JSON,
// which cannot carry it: the next GC took the live pod's attachment for a
// stale one and released its address and deleted its egress veth.
func TestPrivilegedAddRefusesHostileIfName(t *testing.T) {
	tp := newTopo(t)
	entry := withPrevResult(t, tp.egressEntry(false, ""))
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
	for _, c := range []struct{ ifName, want string }{
		{"eth\xff", `CNI_IFNAME "eth\xff" is not valid UTF-8`},
		{"eth%d", `CNI_IFNAME "eth%d" contains '%'`},
	} {
		pod := testutil.NewNS(t)
		id := "ctr-ifname"
		e := execIf(t, tp, "ADD", id, pod.Path(), c.ifName, entry)
		if e == nil || e.Code != types.ErrInvalidEnvironmentVariables || !strings.Contains(e.Msg, c.want) {
			t.Errorf("ADD with CNI_IFNAME %q: %v, want code %d containing %q", c.ifName, e, types.ErrInvalidEnvironmentVariables, c.want)
		}
		if e == nil {
			// What the runtime's next GC does to the attachment it lists.
			held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam"))
			if out, err := runGC(tp, entry, "aws-cni", types.GCAttachment{ContainerID: id, IfName: c.ifName}); err != nil {
				t.Errorf("GC: %v: %s", err, out)
			}
			if after := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(after) < len(held) {
				t.Errorf("GC listing the attachment %q as valid released its address: held %v, then %v", c.ifName, held, after)
			}
		}
		for range 2 {
			if e := execIf(t, tp, "DEL", id, pod.Path(), c.ifName, entry); e != nil {
				t.Errorf("DEL with CNI_IFNAME %q: %v", c.ifName, e)
			}
		}
		wantLines(t, "node after DEL", snapshot(t, tp.node.Path()), nodeBefore)
		wantLines(t, "nat after DEL", tp.nat(t, false), natBefore)
		if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 0 {
			t.Errorf("addresses held after DEL with CNI_IFNAME %q: %v", c.ifName, held)
		}
	}
}

// withPrevResult is entry with a loopback prevResult, as execPlugin runs
// it.
func withPrevResult(t *testing.T, entry string) string {
	t.Helper()
	var conf map[string]any
	if err := json.Unmarshal([]byte(entry), &conf); err != nil {
		t.Fatal(err)
	}
	conf["prevResult"] = map[string]any{"cniVersion": "1.0.0", "interfaces": []map[string]any{{"name": "lo"}}}
	b, _ := json.Marshal(conf)
	return string(b)
}

// TestPrivilegedV6AddRefusesSysctlIfName: IPv6 egress turns IPv6 off on
// the pod's main interface, CNI_IFNAME, through its sysctl directory.
// CNI_IFNAME "lo", "all" or "default" named the loopback or every
// interface's setting instead: the ADD succeeded and the pod lost ::1
// (and, for "all", IPv6 on every interface; for "default", on every later
// one). aws-cni refuses these names; so must egress-cni, with code 4
// naming CNI_IFNAME, leaving the pod's IPv6 settings and ::1 as they
// were. DEL with them succeeds.
func TestPrivilegedV6AddRefusesSysctlIfName(t *testing.T) {
	tp := newTopo(t)
	entry := withPrevResult(t, tp.egressEntry(true, ""))
	for _, name := range []string{"lo", "all", "default"} {
		pod := testutil.NewNS(t)
		before := podIPv6(t, pod)
		id := "ctr-" + name
		e := execIf(t, tp, "ADD", id, pod.Path(), name, entry)
		if want := fmt.Sprintf("CNI_IFNAME %q", name); e == nil || e.Code != types.ErrInvalidEnvironmentVariables || !strings.Contains(e.Msg, want) {
			t.Errorf("ADD with CNI_IFNAME %s: %v, want code %d containing %q", name, e, types.ErrInvalidEnvironmentVariables, want)
		}
		if after := podIPv6(t, pod); after != before {
			t.Errorf("ADD with CNI_IFNAME %s: the pod's IPv6 went from %q to %q", name, before, after)
		}
		for range 2 {
			if e := execIf(t, tp, "DEL", id, pod.Path(), name, entry); e != nil {
				t.Errorf("DEL with CNI_IFNAME %s: %v", name, e)
			}
		}
		if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v6-ipam")); len(held) != 0 {
			t.Errorf("addresses held after DEL with CNI_IFNAME %s: %v", name, held)
		}
	}
}

// podIPv6 sets the pod's loopback up and describes its IPv6: lo's IPv6
// addresses and the disable_ipv6 of all, default and lo.
func podIPv6(t *testing.T, pod ns.NetNS) string {
	t.Helper()
	var s strings.Builder
	err := pod.Do(func(ns.NetNS) error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		addrs, err := netlink.AddrList(lo, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		fmt.Fprintf(&s, "lo %v;", addrs)
		for _, k := range []string{"all", "default", "lo"} {
			b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + k + "/disable_ipv6")
			if err != nil {
				return err
			}
			fmt.Fprintf(&s, " %s/disable_ipv6=%s", k, strings.TrimSpace(string(b)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s.String()
}
