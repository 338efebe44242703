package main

import (
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedV6FailedAddKeepsMainIPv6: IPv6 egress ADD sets
// disable_ipv6=1 on the pod's main interface before it wires v6if0 and the
// SNAT. When a later step fails, the ADD's undo puts the main interface's
// IPv6 back as it found it, as it removes the veth and the address: the
// SNAT (no ip6tables on PATH), or the pod side inside Setup (an MTU of 576,
// which IPv6 cannot use, so the ULA cannot be added to v6if0; the plugin's
// ADD refuses such an mtu before wiring, so Setup is called directly).
func TestPrivilegedV6FailedAddKeepsMainIPv6(t *testing.T) {
	tp := newTopo(t)
	for _, tc := range []struct {
		name string
		mtu  bool // Setup with an MTU IPv6 cannot use
		path func() string
	}{
		{"SNAT fails", false, t.TempDir},
		{"pod side fails", true, nil},
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
			addMainIf(t, pod, "eth0")
			if got := disabled(); got != "0\n" {
				t.Fatalf("pod eth0 disable_ipv6 = %q before ADD, want 0", got)
			}
			podBefore := snapshot(t, pod.Path())
			if tc.mtu {
				err := tp.inNode(func() error {
					return withHostNSForTest(func(hostNS ns.NetNS) error {
						_, err := egress.Wiring{
							Family: egress.V6, PodNS: pod.Path(), MainIf: "eth0",
							HostVeth: egress.HostVethName("ctr-v6-fail", "eth0"), MTU: 576,
							Lease:  egress.Lease{Addr: netip.MustParsePrefix("fd00::ac:2/118"), GW: netip.MustParseAddr("fd00::ac:1")},
							Routes: []netip.Prefix{netip.MustParsePrefix("::/0")}, HostNS: hostNS,
						}.Setup()
						// The rest of the ADD's undo, as cmdAdd does it.
						return errors.Join(err, egress.Teardown(egress.V6, pod.Path(), egress.HostVethName("ctr-v6-fail", "eth0"), []netip.Addr{netip.MustParseAddr("fd00::ac:2")}))
					})
				})
				if err == nil {
					t.Fatal("Setup with MTU 576 succeeded, want the ULA refused")
				}
				t.Logf("Setup failed as injected: %v", err)
			} else {
				e := execPlugin(t, tp, "ADD", "ctr-v6-fail", pod.Path(), tc.path(), tp.egressEntry(true, ""))
				if e == nil || e.Code != ErrWiring {
					t.Fatalf("ADD: %v, want code %d", e, ErrWiring)
				}
				t.Logf("ADD failed as injected: %s", e.Details)
			}
			if got := disabled(); got != "0\n" {
				t.Errorf("pod eth0 disable_ipv6 = %q after the failed ADD, want 0 as before it", got)
			}
			wantLines(t, "pod after failed ADD", snapshot(t, pod.Path()), podBefore)
		})
	}
}

// withHostNSForTest runs f with a handle on the calling thread's namespace.
func withHostNSForTest(f func(ns.NetNS) error) error {
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return err
	}
	defer hostNS.Close()
	return f(hostNS)
}
