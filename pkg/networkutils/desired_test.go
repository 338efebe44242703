package networkutils

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

// baseConfig is upstream's default IPv4 node: SNAT on, NodePort support on.
func baseConfig() HostConfig {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	return HostConfig{
		PrimaryMAC:      mac,
		PrimaryIPv4:     netip.MustParseAddr("10.0.0.10"),
		VPCCIDRs:        prefixes("10.0.0.0/16", "100.64.0.0/16"),
		VethPrefix:      "eni",
		NodePortSupport: true,
	}
}

var legacyEnv = hostEnv{PrimaryLink: "eth0", RandomFully: true, Backend: ConnmarkIPTables}

type desiredCase struct {
	name string
	cfg  HostConfig
	env  hostEnv
	want string
}

func desiredCases() []desiredCase {
	with := func(f func(*HostConfig)) HostConfig {
		c := baseConfig()
		f(&c)
		return c
	}
	nftEnv := legacyEnv
	nftEnv.Backend = ConnmarkNFTables
	noRandomFully := legacyEnv
	noRandomFully.RandomFully = false
	return []desiredCase{
		{name: "defaults, iptables connmark", cfg: baseConfig(), env: legacyEnv, want: `
link eth0 mtu 9001
rule ipv4 1024: from all fwmark 0x80/0x80 lookup main
iptables -t mangle PREROUTING (shared, ours appended):
  -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
  -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
  -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat PREROUTING (shared, ours appended):
  -i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0
  -m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat POSTROUTING (shared, ours appended):
  -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
iptables -t nat -N AWS-SNAT-CHAIN-0:
  -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.10 --random-fully
iptables -t nat -N AWS-CONNMARK-CHAIN-0:
  -d 100.64.0.0/16 -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
  -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80
`},
		{name: "defaults, nftables connmark", cfg: baseConfig(), env: nftEnv, want: `
link eth0 mtu 9001
rule ipv4 1024: from all fwmark 0x80/0x80 lookup main
iptables -t mangle PREROUTING (shared, ours appended):
  -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
  -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
  -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat POSTROUTING (shared, ours appended):
  -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
iptables -t nat -N AWS-SNAT-CHAIN-0:
  -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.10 --random-fully
table ip aws-cni {
  chain nat-prerouting {
    type nat hook prerouting priority -90; policy accept;
    fib daddr type local return
    iifname "eni*" counter jump snat-mark
    counter meta mark set ct mark & 0x80
  }
  chain snat-mark {
    counter ip daddr 10.0.0.0/16 return
    counter ip daddr 100.64.0.0/16 return
    counter ct mark set ct mark | 0x80
  }
}
`},
		{name: "external SNAT with NodePort", cfg: with(func(c *HostConfig) { c.ExternalSNAT = true }), env: legacyEnv, want: `
link eth0 mtu 9001
rule ipv4 1024: from all fwmark 0x80/0x80 lookup main
iptables -t mangle PREROUTING (shared, ours appended):
  -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
  -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
  -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat -N AWS-SNAT-CHAIN-0:
`},
		{name: "external SNAT without NodePort", cfg: with(func(c *HostConfig) { c.ExternalSNAT = true; c.NodePortSupport = false }), env: nftEnv, want: `
link eth0 mtu 9001
iptables -t nat -N AWS-SNAT-CHAIN-0:
`},
		{name: "SNAT without NodePort", cfg: with(func(c *HostConfig) { c.NodePortSupport = false }), env: nftEnv, want: `
link eth0 mtu 9001
rule ipv4 1024: from all fwmark 0x80/0x80 lookup main
iptables -t mangle PREROUTING (shared, ours appended):
  -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat POSTROUTING (shared, ours appended):
  -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
iptables -t nat -N AWS-SNAT-CHAIN-0:
  -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.10 --random-fully
table ip aws-cni {
  chain nat-prerouting {
    type nat hook prerouting priority -90; policy accept;
    fib daddr type local return
    iifname "eni*" counter jump snat-mark
    counter meta mark set ct mark & 0x80
  }
  chain snat-mark {
    counter ip daddr 10.0.0.0/16 return
    counter ip daddr 100.64.0.0/16 return
    counter ct mark set ct mark | 0x80
  }
}
`},
		{name: "excludes, hashrandom", cfg: with(func(c *HostConfig) {
			c.ExcludeSNATCIDRs = prefixes("192.168.7.9/16", "10.0.0.0/16", "0.0.0.0/0")
			c.RandomizeSNAT = RandomizeHashRandom
		}), env: legacyEnv, want: `
link eth0 mtu 9001
rule ipv4 1024: from all fwmark 0x80/0x80 lookup main
iptables -t mangle PREROUTING (shared, ours appended):
  -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
  -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
  -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat PREROUTING (shared, ours appended):
  -i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0
  -m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat POSTROUTING (shared, ours appended):
  -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
iptables -t nat -N AWS-SNAT-CHAIN-0:
  -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
  -d 192.168.0.0/16 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
  -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.10 --random
iptables -t nat -N AWS-CONNMARK-CHAIN-0:
  -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
  -d 192.168.0.0/16 -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
  -d 100.64.0.0/16 -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
  -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80
`},
		{name: "randomize none", cfg: with(func(c *HostConfig) { c.RandomizeSNAT = RandomizeNone }), env: nftEnv, want: `
link eth0 mtu 9001
rule ipv4 1024: from all fwmark 0x80/0x80 lookup main
iptables -t mangle PREROUTING (shared, ours appended):
  -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
  -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
  -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat POSTROUTING (shared, ours appended):
  -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
iptables -t nat -N AWS-SNAT-CHAIN-0:
  -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.10
table ip aws-cni {
  chain nat-prerouting {
    type nat hook prerouting priority -90; policy accept;
    fib daddr type local return
    iifname "eni*" counter jump snat-mark
    counter meta mark set ct mark & 0x80
  }
  chain snat-mark {
    counter ip daddr 10.0.0.0/16 return
    counter ip daddr 100.64.0.0/16 return
    counter ct mark set ct mark | 0x80
  }
}
`},
		{name: "prng without --random-fully support", cfg: baseConfig(), env: noRandomFully, want: `
link eth0 mtu 9001
rule ipv4 1024: from all fwmark 0x80/0x80 lookup main
iptables -t mangle PREROUTING (shared, ours appended):
  -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
  -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
  -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat PREROUTING (shared, ours appended):
  -i eni+ -m comment --comment "AWS, outbound connections" -j AWS-CONNMARK-CHAIN-0
  -m comment --comment "AWS, CONNMARK" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat POSTROUTING (shared, ours appended):
  -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
iptables -t nat -N AWS-SNAT-CHAIN-0:
  -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.10 --random
iptables -t nat -N AWS-CONNMARK-CHAIN-0:
  -d 100.64.0.0/16 -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS CONNMARK CHAIN" -j RETURN
  -m comment --comment "AWS, CONNMARK" -j CONNMARK --set-xmark 0x80/0x80
`},
		{name: "custom mark, veth prefix, external service CIDRs", cfg: with(func(c *HostConfig) {
			c.Connmark = 0x4000
			c.VethPrefix = "cali"
			c.ExternalServiceCIDRs = prefixes("172.20.0.0/16", "172.21.0.1/32")
			c.ENIMTU = 1500
		}), env: nftEnv, want: `
link eth0 mtu 1500
rule ipv4 1024: from all fwmark 0x4000/0x4000 lookup main
rule ipv4 1535: from all to 172.20.0.0/16 lookup main
rule ipv4 1535: from all to 172.21.0.1/32 lookup main
iptables -t mangle PREROUTING (shared, ours appended):
  -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x4000/0x4000
  -i cali+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x4000 --ctmask 0x4000
  -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x4000 --ctmask 0x4000
iptables -t nat POSTROUTING (shared, ours appended):
  -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
iptables -t nat -N AWS-SNAT-CHAIN-0:
  -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.10 --random-fully
table ip aws-cni {
  chain nat-prerouting {
    type nat hook prerouting priority -90; policy accept;
    fib daddr type local return
    iifname "cali*" counter jump snat-mark
    counter meta mark set ct mark & 0x4000
  }
  chain snat-mark {
    counter ip daddr 10.0.0.0/16 return
    counter ip daddr 100.64.0.0/16 return
    counter ct mark set ct mark | 0x4000
  }
}
`},
		{name: "pod ENI strict", cfg: with(func(c *HostConfig) { c.PodENIStrict = true }), env: nftEnv, want: `
link eth0 mtu 9001
rule ipv4 1024: from all fwmark 0x80/0x80 lookup main
rule ipv4 20: from all lookup local
no rule ipv4 0: from all lookup local
iptables -t mangle PREROUTING (shared, ours appended):
  -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
  -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
  -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat POSTROUTING (shared, ours appended):
  -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
iptables -t nat -N AWS-SNAT-CHAIN-0:
  -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.10 --random-fully
table ip aws-cni {
  chain nat-prerouting {
    type nat hook prerouting priority -90; policy accept;
    fib daddr type local return
    iifname "eni*" counter jump snat-mark
    counter meta mark set ct mark & 0x80
  }
  chain snat-mark {
    counter ip daddr 10.0.0.0/16 return
    counter ip daddr 100.64.0.0/16 return
    counter ct mark set ct mark | 0x80
  }
}
`},
		{name: "IPv6 strict", cfg: with(func(c *HostConfig) {
			c.IPv6 = true
			c.PodENIStrict = true
			c.PrimaryIPv4 = netip.Addr{}
			c.VPCCIDRs = nil
		}), env: nftEnv, want: `
link eth0 mtu 9001
rule ipv6 1024: from all fwmark 0x80/0x80 lookup main
rule ipv6 20: from all lookup local
rule ipv6 0: from fe80:ec2::1/128 ipproto 58 lookup local
no rule ipv6 0: from all lookup local
iptables -t filter FORWARD (shared, ours at top):
  -d 169.254.172.0/22 -m conntrack --ctstate NEW -m comment --comment "Block Node Local Pod access via IPv4" -j REJECT --reject-with icmp-port-unreachable
ip6tables -t mangle PREROUTING (shared, ours appended):
  -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
  -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
  -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
`},
		{name: "IPv4 with v6 egress", cfg: with(func(c *HostConfig) { c.V6Egress = true }), env: nftEnv, want: `
link eth0 mtu 9001
rule ipv4 1024: from all fwmark 0x80/0x80 lookup main
iptables -t mangle PREROUTING (shared, ours appended):
  -i eth0 -m comment --comment "AWS, primary ENI" -m addrtype --dst-type LOCAL --limit-iface-in -j CONNMARK --set-xmark 0x80/0x80
  -i eni+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
  -i vlan+ -m comment --comment "AWS, primary ENI" -j CONNMARK --restore-mark --nfmask 0x80 --ctmask 0x80
iptables -t nat POSTROUTING (shared, ours appended):
  -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
iptables -t nat -N AWS-SNAT-CHAIN-0:
  -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
  ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.10 --random-fully
ip6tables -t filter FORWARD (shared, ours at top):
  -d fd00::ac:0/118 -m conntrack --ctstate NEW -m comment --comment "Block Node Local Pod access via IPv6" -j REJECT --reject-with icmp6-port-unreachable
table ip aws-cni {
  chain nat-prerouting {
    type nat hook prerouting priority -90; policy accept;
    fib daddr type local return
    iifname "eni*" counter jump snat-mark
    counter meta mark set ct mark & 0x80
  }
  chain snat-mark {
    counter ip daddr 10.0.0.0/16 return
    counter ip daddr 100.64.0.0/16 return
    counter ct mark set ct mark | 0x80
  }
}
`},
	}
}

func TestDesiredHost(t *testing.T) {
	for _, tc := range desiredCases() {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err != nil {
				t.Fatalf("config invalid: %v", err)
			}
			got := desiredHost(tc.cfg.withDefaults(), tc.env).String()
			if diff := cmp.Diff(strings.TrimLeft(tc.want, "\n"), got); diff != "" {
				t.Errorf("desired state (-want +got):\n%s", diff)
			}
		})
	}
}
