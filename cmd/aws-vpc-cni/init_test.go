package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

func TestPlanSysctls(t *testing.T) {
	key := func(l []sysctl) []string {
		var out []string
		for _, s := range l {
			out = append(out, s.Key+"="+s.Value)
		}
		return out
	}
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"IPv4 defaults", nil, []string{"net/ipv4/conf/ens5/rp_filter=2", "net/ipv4/tcp_early_demux=1"}},
		{"early demux off", []string{"DISABLE_TCP_EARLY_DEMUX", "true"}, []string{"net/ipv4/conf/ens5/rp_filter=2", "net/ipv4/tcp_early_demux=0"}},
		{"IPv6", []string{"ENABLE_IPv6", "true"}, []string{
			"net/ipv4/conf/ens5/rp_filter=2", "net/ipv4/tcp_early_demux=1", "net/ipv6/conf/all/disable_ipv6=0",
			"net/ipv6/conf/all/forwarding=1", "net/ipv6/conf/ens5/accept_ra=2",
		}},
		{"IPv6 egress", []string{"ENABLE_V6_EGRESS", "true"}, []string{
			"net/ipv4/conf/ens5/rp_filter=2", "net/ipv4/tcp_early_demux=1",
			"net/ipv6/conf/all/forwarding=1", "net/ipv6/conf/ens5/accept_ra=2",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := parseInitConfig(env(tt.env...))
			if diff := cmp.Diff(tt.want, key(planSysctls(cfg, "ens5"))); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// In a fresh network namespace with a link carrying the primary ENI's MAC:
// plugins are copied (not the init binary itself) and the kernel's sysctls
// hold the planned values.
func TestPrivilegedInit(t *testing.T) {
	testutil.Privileged(t)
	netns := testutil.NewNS(t)
	mac := "02:aa:bb:cc:dd:01"
	dir, host := t.TempDir(), t.TempDir()
	mustWrite(t, filepath.Join(dir, "loopback"), "lo plugin", 0o755)
	mustWrite(t, filepath.Join(dir, "portmap"), "pm plugin", 0o755)
	self := filepath.Join(dir, "aws-vpc-cni-init")
	mustWrite(t, self, "me", 0o755)
	imds := func() (nodeIdentity, error) { return fakeIdentity{id: awsutils.Identity{PrimaryMAC: mac}}, nil }
	lookup := env("HOST_CNI_BIN_PATH", host, "ENABLE_IPv6", "true", "DISABLE_TCP_EARLY_DEMUX", "true")

	var code int
	err := netns.Do(func(ns.NetNS) error {
		hw, _ := net.ParseMAC(mac)
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ens5", HardwareAddr: hw}, PeerName: "peer5"}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		code = runInit(context.Background(), testLogger(t), lookup, imds, initOptions{dir: dir, self: self, procSys: "/proc/sys"})
		for key, want := range map[string]string{
			"net/ipv4/conf/ens5/rp_filter":   "2",
			"net/ipv4/tcp_early_demux":       "0",
			"net/ipv6/conf/all/forwarding":   "1",
			"net/ipv6/conf/ens5/accept_ra":   "2",
			"net/ipv6/conf/all/disable_ipv6": "0",
		} {
			b, err := os.ReadFile(filepath.Join("/proc/sys", key))
			if err != nil {
				return err
			}
			if got := strings.TrimSpace(string(b)); got != want {
				t.Errorf("%s = %s, want %s", key, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("init exit %d", code)
	}
	entries, _ := os.ReadDir(host)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"loopback", "portmap"}, names); diff != "" {
		t.Errorf("host plugins (-want +got)\n%s", diff)
	}

	// No interface with the primary MAC: a clear failure.
	err = netns.Do(func(ns.NetNS) error {
		other := func() (nodeIdentity, error) {
			return fakeIdentity{id: awsutils.Identity{PrimaryMAC: "02:00:00:00:00:99"}}, nil
		}
		code = runInit(context.Background(), testLogger(t), lookup, other, initOptions{dir: dir, self: self, procSys: "/proc/sys"})
		return nil
	})
	if err != nil || code != 1 {
		t.Errorf("unknown MAC: exit %d, err %v", code, err)
	}
}
