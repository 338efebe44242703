package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedV6FailedAddKeepsMainIPv6: IPv6 egress ADD sets
// disable_ipv6=1 on the pod's main interface before it wires v6if0 and the
// SNAT. When a later step fails, the ADD's undo puts the main interface's
// IPv6 back as it found it, as it removes the veth and the address: the
// SNAT (no ip6tables on PATH), or the pod side inside Setup (an MTU of 576,
// which the netconf accepts but IPv6 cannot use, so the ULA cannot be
// added to v6if0).
func TestPrivilegedV6FailedAddKeepsMainIPv6(t *testing.T) {
	tp := newTopo(t)
	for _, tc := range []struct {
		name, mtu string
		path      func() string
	}{
		{"SNAT fails", "", t.TempDir},
		{"pod side fails", "576", func() string { return os.Getenv("PATH") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testutil.NewNS(t)
			disabled := func() string {
				t.Helper()
				var b []byte
				err := pod.Do(func(ns.NetNS) error {
					var err error
					b, err = os.ReadFile("/proc/sys/net/ipv6/conf/eth0/disable_ipv6")
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			err := pod.Do(func(ns.NetNS) error {
				return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0-peer"})
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := disabled(); got != "0\n" {
				t.Fatalf("pod eth0 disable_ipv6 = %q before ADD, want 0", got)
			}
			podBefore := snapshot(t, pod.Path())
			entry := tp.egressEntry(true, "")
			if tc.mtu != "" {
				var m map[string]any
				if err := json.Unmarshal([]byte(entry), &m); err != nil {
					t.Fatal(err)
				}
				m["mtu"] = tc.mtu
				b, _ := json.Marshal(m)
				entry = string(b)
			}
			e := execPlugin(t, tp, "ADD", "ctr-v6-fail", pod.Path(), tc.path(), entry)
			if e == nil || e.Code != ErrWiring {
				t.Fatalf("ADD: %v, want code %d", e, ErrWiring)
			}
			t.Logf("ADD failed as injected: %s", e.Details)
			if got := disabled(); got != "0\n" {
				t.Errorf("pod eth0 disable_ipv6 = %q after the failed ADD, want 0 as before it", got)
			}
			wantLines(t, "pod after failed ADD", snapshot(t, pod.Path()), podBefore)
		})
	}
}
