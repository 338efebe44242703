package networkutils

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// hostTopology is a node with a primary and a secondary ENI attached to a
// "vpc" namespace that routes to an "internet" namespace, and one pod on
// the secondary ENI. The vpc drops packets whose source does not belong
// behind the interface they arrive on (rp_filter=1, like EC2's
// source/destination check), so pod traffic to the internet only works if
// it leaves through the primary ENI SNATed to the node's primary address.
type hostTopology struct {
	node, vpc, inet, pod ns.NetNS
	cfg                  HostConfig
}

const (
	primaryMAC   = "02:00:00:00:00:01"
	secondaryMAC = "02:00:00:00:00:11"
	nodeIP       = "10.0.0.10"
	podIP        = "10.0.1.50"
	vpcServer    = "10.0.200.5:8080"   // inside the VPC CIDR
	inetServer   = "198.51.100.7:8080" // the internet
	exclServer   = "203.0.113.9:8080"  // internet, but in an excluded CIDR
	foreignRule  = "-s 192.0.2.99/32 -j RETURN"
)

func writeSysctl(path, v string) error {
	if err := os.WriteFile(path, []byte(v), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", path, v, err)
	}
	return nil
}

func newHostTopology(t *testing.T, iptablesPath string) *hostTopology {
	t.Helper()
	h := &hostTopology{node: testutil.NewNS(t), vpc: testutil.NewNS(t), inet: testutil.NewNS(t), pod: testutil.NewNS(t)}
	veth(t, h.node, "eth0", primaryMAC, []string{nodeIP + "/24"}, h.vpc, "vpc-eth0", []string{"10.0.0.1/24"})
	veth(t, h.node, "eth1", secondaryMAC, nil, h.vpc, "vpc-eth1", []string{"10.0.1.1/24"})
	veth(t, h.vpc, "vpc-inet", "02:00:00:00:99:01", []string{"192.0.2.1/24"}, h.inet, "inet0", []string{"192.0.2.2/24"})
	veth(t, h.node, "eni0pod", "02:00:00:00:aa:01", nil, h.pod, "eth0", []string{podIP + "/32"})

	n := New(nil)
	do(t, h.node, func() error {
		if err := writeSysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
			return err
		}
		// The secondary ENI, wired by this package.
		eni := ENI{MAC: mustMAC(t, secondaryMAC), PrimaryIP: netip.MustParseAddr("10.0.1.20"), Subnet: netip.MustParsePrefix("10.0.1.0/24"), DeviceNumber: 1, MTU: 1500}
		if err := n.SetupENI(context.Background(), eni); err != nil {
			return err
		}
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP("10.0.0.1")}); err != nil {
			return fmt.Errorf("node default route: %w", err)
		}
		// What the CNI plugin does for a pod on the secondary ENI.
		veth, err := netlink.LinkByName("eni0pod")
		if err != nil {
			return err
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: veth.Attrs().Index, Dst: prefixToIPNet(netip.MustParsePrefix(podIP + "/32")), Scope: netlink.SCOPE_LINK}); err != nil {
			return fmt.Errorf("route to pod: %w", err)
		}
		for _, r := range []ruleSpec{
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityToPod, Dst: netip.MustParsePrefix(podIP + "/32"), Table: hostcontract.MainTable},
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityFromPod, Src: netip.MustParsePrefix(podIP + "/32"), Table: 2},
		} {
			if err := netlink.RuleAdd(r.netlinkRule()); err != nil {
				return fmt.Errorf("rule %s: %w", r, err)
			}
		}
		return nil
	})
	var hostVethMAC net.HardwareAddr
	do(t, h.node, func() error {
		l, err := netlink.LinkByName("eni0pod")
		hostVethMAC = l.Attrs().HardwareAddr
		return err
	})
	do(t, h.pod, func() error {
		eth0, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		gw := net.ParseIP("169.254.1.1")
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK}); err != nil {
			return err
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gw}); err != nil {
			return err
		}
		return netlink.NeighAdd(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, IP: gw, HardwareAddr: hostVethMAC, State: netlink.NUD_PERMANENT})
	})
	do(t, h.vpc, func() error {
		for _, s := range []string{"ip_forward", "conf/all/rp_filter", "conf/vpc-eth0/rp_filter", "conf/vpc-eth1/rp_filter", "conf/vpc-inet/rp_filter"} {
			if err := writeSysctl("/proc/sys/net/ipv4/"+s, "1"); err != nil {
				return err
			}
		}
		return upWithAddrs("lo", []string{"10.0.200.5/32"})
	})
	sh(t, h.vpc, "ip", "route", "add", podIP+"/32", "via", "10.0.1.20", "dev", "vpc-eth1")
	sh(t, h.vpc, "ip", "route", "add", "198.51.100.0/24", "via", "192.0.2.2")
	sh(t, h.vpc, "ip", "route", "add", "203.0.113.0/24", "via", "192.0.2.2")
	do(t, h.inet, func() error { return upWithAddrs("lo", []string{"198.51.100.7/32", "203.0.113.9/32"}) })
	sh(t, h.inet, "ip", "route", "add", "default", "via", "192.0.2.1")

	listen(t, h.vpc, vpcServer)
	listen(t, h.inet, inetServer)
	listen(t, h.inet, exclServer)

	h.cfg = HostConfig{
		PrimaryMAC:       mustMAC(t, primaryMAC),
		PrimaryIPv4:      netip.MustParseAddr(nodeIP),
		VPCCIDRs:         []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")},
		ExcludeSNATCIDRs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
		VethPrefix:       "eni",
		ENIMTU:           1500,
		NodePortSupport:  true,
		IPTablesPath:     iptablesPath,
	}
	return h
}

// listen serves the peer's source address to every TCP client.
func listen(t *testing.T, netns ns.NetNS, addr string) {
	t.Helper()
	var l net.Listener
	do(t, netns, func() error {
		var err error
		l, err = net.Listen("tcp", addr) // the socket belongs to netns from here on
		return err
	})
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			_, _ = io.WriteString(c, host)
			_ = c.Close()
		}
	}()
}

// blockedWait bounds a connection expected to fail (dropped packets only
// time out); one expected to work gets workingWait, as a loaded CI machine
// can take many seconds to connect and answer, and a wrong path still
// fails by then.
const (
	blockedWait = time.Second
	workingWait = 30 * time.Second
)

// seenFrom connects from the pod and returns the source address the server
// saw, within blockedWait (the caller expects it to fail).
func (h *hostTopology) seenFrom(addr string) (string, error) {
	return h.seenWithin(addr, blockedWait)
}

func (h *hostTopology) seenWithin(addr string, wait time.Duration) (string, error) {
	var got string
	err := h.pod.Do(func(ns.NetNS) error {
		c, err := (&net.Dialer{Timeout: wait}).Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(wait))
		b, err := io.ReadAll(c)
		got = string(b)
		return err
	})
	return got, err
}

func (h *hostTopology) expectSeen(t *testing.T, addr, want string) {
	t.Helper()
	got, err := h.seenWithin(addr, workingWait)
	if err != nil {
		t.Errorf("pod → %s: %v (want it seen from %s)", addr, err, want)
		return
	}
	if got != want {
		t.Errorf("pod → %s: server saw %s, want %s", addr, got, want)
	}
}

func (h *hostTopology) reconcile(t *testing.T, cfg HostConfig) HostResult {
	t.Helper()
	var res HostResult
	do(t, h.node, func() error {
		var err error
		res, err = New(nil).ReconcileHost(context.Background(), cfg)
		return err
	})
	return res
}

var counters = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// nftRules returns table ip aws-cni's rule lines as `nft list` prints them.
func nftRules(t *testing.T, netns ns.NetNS) []string {
	var out []string
	for _, l := range strings.Split(sh(t, netns, "nft", "list", "table", "ip", nftTable), "\n") {
		l = strings.TrimSpace(counters.ReplaceAllString(l, "counter"))
		l = strings.ReplaceAll(l, "0x00000080", "0x80")
		if l == "" || strings.HasPrefix(l, "table") || strings.HasPrefix(l, "chain") || strings.HasPrefix(l, "type") || l == "}" {
			continue
		}
		out = append(out, l)
	}
	return out
}

func TestPrivilegedHostNetworking(t *testing.T) {
	for _, tc := range []struct {
		name        string
		path        string
		backend     ConnmarkBackend
		wantBackend ConnmarkBackend
	}{
		{"iptables-legacy", "iptables-legacy", ConnmarkAuto, ConnmarkIPTables},
		{"iptables-nft", "iptables-nft", ConnmarkIPTables, ConnmarkIPTables},
		{"nftables", "iptables-nft", ConnmarkAuto, ConnmarkNFTables},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.Privileged(t)
			h := newHostTopology(t, tc.path)
			cfg := h.cfg
			cfg.ConnmarkBackend = tc.backend
			ipt := tc.path

			// Foreign state the reconcile must never touch.
			sh(t, h.node, ipt, append([]string{"-t", "nat", "-A", "POSTROUTING"}, strings.Fields(foreignRule)...)...)
			sh(t, h.node, ipt, "-t", "mangle", "-A", "PREROUTING", "-i", "eni+", "-m", "comment", "--comment", "not ours")
			// Other AWS tooling's rule: an "AWS" comment that is not one of ours.
			sh(t, h.node, ipt, "-t", "nat", "-A", "POSTROUTING", "-s", "192.0.2.98/32", "-m", "comment", "--comment", "AWS, something else", "-j", "RETURN")
			sh(t, h.node, "nft", "add", "table", "ip", "foreign")
			sh(t, h.node, "ip", "rule", "add", "from", "192.0.2.99", "lookup", "main", "priority", "1024")
			foreign := func() {
				t.Helper()
				out := sh(t, h.node, ipt, "-t", "nat", "-S", "POSTROUTING")
				if !strings.Contains(out, foreignRule) {
					t.Errorf("foreign nat rule gone:\n%s", out)
				}
				if !strings.Contains(out, `--comment "AWS, something else"`) {
					t.Errorf("another AWS tool's nat rule gone:\n%s", out)
				}
				if out := sh(t, h.node, ipt, "-t", "mangle", "-S", "PREROUTING"); !strings.Contains(out, `"not ours"`) {
					t.Errorf("foreign mangle rule gone:\n%s", out)
				}
				sh(t, h.node, "nft", "list", "table", "ip", "foreign")
				if out := sh(t, h.node, "ip", "rule"); !strings.Contains(out, "1024:\tfrom 192.0.2.99 lookup main") {
					t.Errorf("foreign ip rule gone:\n%s", out)
				}
			}

			res := h.reconcile(t, cfg)
			if res.Backend != tc.wantBackend {
				t.Fatalf("backend %q, want %q", res.Backend, tc.wantBackend)
			}
			if len(res.Changes) == 0 {
				t.Fatal("first reconcile made no changes")
			}
			h.expectSeen(t, inetServer, nodeIP)
			h.expectSeen(t, vpcServer, podIP)
			h.expectSeen(t, exclServer, podIP)
			foreign()

			// Kernel state equals the plan, and a second run changes nothing.
			want := desiredHost(cfg.withDefaults(), hostEnv{PrimaryLink: "eth0", RandomFully: true, Backend: tc.wantBackend})
			if got := sh(t, h.node, ipt, "-t", "nat", "-S", snatChain); !strings.Contains(got, "--random-fully") || strings.Count(got, "-A ") != len(want.IPv4.Chains[0].Rules) {
				t.Errorf("SNAT chain:\n%s\nwant:\n%s", got, want)
			}
			if want.NFT != nil {
				wantLines := strings.Split(strings.TrimSpace(want.NFT.String()), "\n")
				var wantRules []string
				for _, l := range wantLines {
					l = strings.TrimSpace(l)
					if !strings.HasPrefix(l, "table") && !strings.HasPrefix(l, "chain") && !strings.HasPrefix(l, "type") && l != "}" {
						wantRules = append(wantRules, l)
					}
				}
				if diff := cmp.Diff(wantRules, nftRules(t, h.node)); diff != "" {
					t.Errorf("nft table ip aws-cni (-want +got):\n%s", diff)
				}
			}
			if res := h.reconcile(t, cfg); len(res.Changes) != 0 {
				t.Errorf("second reconcile changed: %q", res.Changes)
			}

			// A rule deleted by hand breaks egress until the next reconcile.
			snat := want.IPv4.Chains[0].Rules[len(want.IPv4.Chains[0].Rules)-1]
			sh(t, h.node, ipt, append([]string{"-t", "nat", "-D", snatChain}, snat...)...)
			if got, err := h.seenFrom(inetServer); err == nil {
				t.Errorf("without the SNAT rule the pod still reached the internet as %s: the topology proves nothing", got)
			}
			res = h.reconcile(t, cfg)
			if want := []string{ipt + " -t nat -I " + snatChain + " 3 " + snat.String()}; !slices.Equal(res.Changes, want) {
				t.Errorf("restore changes %q, want %q", res.Changes, want)
			}
			h.expectSeen(t, inetServer, nodeIP)

			// The same for the connmark rule of the backend in use.
			if tc.wantBackend == ConnmarkNFTables {
				out := sh(t, h.node, "nft", "-a", "list", "chain", "ip", nftTable, nftMarkChain)
				m := regexp.MustCompile(`ct mark set ct mark \| 0x00000080 # handle (\d+)`).FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("no mark rule in:\n%s", out)
				}
				sh(t, h.node, "nft", "delete", "rule", "ip", nftTable, nftMarkChain, "handle", m[1])
			} else {
				sh(t, h.node, ipt, "-t", "nat", "-D", connmarkChain, "-m", "comment", "--comment", commentConnmark, "-j", "CONNMARK", "--set-xmark", "0x80/0x80")
			}
			if got, err := h.seenFrom(inetServer); err == nil {
				t.Errorf("without the connmark rule the pod still reached the internet as %s", got)
			}
			if res := h.reconcile(t, cfg); len(res.Changes) == 0 {
				t.Error("reconcile did not restore the connmark rule")
			}
			h.expectSeen(t, inetServer, nodeIP)

			// External SNAT: no SNAT, no connmark; pod addresses go out as is.
			ext := cfg
			ext.ExternalSNAT = true
			h.reconcile(t, ext)
			h.expectSeen(t, inetServer, podIP)
			h.expectSeen(t, vpcServer, podIP)
			if out := sh(t, h.node, ipt, "-t", "nat", "-S"); strings.Contains(out, "AWS") && !strings.Contains(out, "-N "+snatChain) || strings.Contains(out, "-A "+snatChain) || strings.Contains(out, connmarkChain) {
				t.Errorf("external SNAT left rules:\n%s", out)
			}
			if out := sh(t, h.node, "nft", "list", "tables"); strings.Contains(out, nftTable) {
				t.Errorf("external SNAT left the nft table:\n%s", out)
			}
			if res := h.reconcile(t, ext); len(res.Changes) != 0 {
				t.Errorf("second external-SNAT reconcile changed: %q", res.Changes)
			}
			foreign()

			// And back.
			h.reconcile(t, cfg)
			h.expectSeen(t, inetServer, nodeIP)
			foreign()
		})
	}
}
