package egress

import (
	"strings"
	"testing"
)

// upstreamV4 is the egress-cni entry the installer writes for an IPv6
// cluster, as the runtime passes it.
const upstreamV4 = `{"cniVersion":"0.4.0","name":"aws-cni","type":"egress-cni","mtu":"9001","enabled":"true",
 "randomizeSNAT":"prng","nodeIP":"10.0.0.10",
 "ipam":{"type":"host-local","ranges":[[{"subnet":"169.254.172.0/22"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"/run/cni/v6pd/egress-v4-ipam"},
 "pluginLogFile":"/var/log/aws-routed-eni/egress-v4-plugin.log","pluginLogLevel":"DEBUG"}`

func TestParseConfigUpstreamEntries(t *testing.T) {
	c, err := ParseConfig([]byte(upstreamV4))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled || c.Family != V4 || c.MTU != 9001 || c.SNAT != SNATRandomFully || c.NodeIP.String() != "10.0.0.10" ||
		c.Range.String() != "169.254.172.1-169.254.175.254" || c.Range.Gateway.String() != "169.254.172.1" ||
		len(c.Routes) != 1 || c.Routes[0].String() != "0.0.0.0/0" || c.DataDir != "/run/cni/v6pd/egress-v4-ipam" || c.Network != "aws-cni" {
		t.Errorf("parsed %+v", c)
	}
	v6 := strings.NewReplacer(`"10.0.0.10"`, `"2001:db8::10"`, "169.254.172.0/22", "fd00::ac:00/118", "0.0.0.0/0", "::/0").Replace(upstreamV4)
	c, err = ParseConfig([]byte(v6))
	if err != nil {
		t.Fatal(err)
	}
	if c.Family != V6 || c.Range.String() != "fd00::ac:1-fd00::ac:3ff" || c.Family.PodIfName() != "v6if0" {
		t.Errorf("v6: %+v", c)
	}
	// Disabled, as an IPv4 cluster without ENABLE_V6_EGRESS: no node IP.
	off := strings.NewReplacer(`"enabled":"true"`, `"enabled":"false"`, `"nodeIP":"10.0.0.10"`, `"nodeIP":""`).Replace(upstreamV4)
	if c, err := ParseConfig([]byte(off)); err != nil || c.Enabled {
		t.Errorf("disabled: %+v %v", c, err)
	}
}

func TestParseConfigRejects(t *testing.T) {
	for _, tc := range []struct{ old, new, want string }{
		{`"enabled":"true"`, `"enabled":"yes"`, `enabled "yes"`},
		{`"mtu":"9001"`, `"mtu":"big"`, `mtu "big"`},
		{`"randomizeSNAT":"prng"`, `"randomizeSNAT":"fast"`, `randomizeSNAT "fast"`},
		{`"nodeIP":"10.0.0.10"`, `"nodeIP":"2001:db8::1"`, "not of the egress range's family"},
		{`"nodeIP":"10.0.0.10"`, `"nodeIP":"ten"`, `nodeIP "ten"`},
		{`"nodeIP":"10.0.0.10"`, `"nodeIP":""`, "nodeIP is empty but egress is enabled"},
		{`"type":"host-local"`, `"type":"dhcp"`, `type "dhcp"`},
		{`169.254.172.0/22`, `169.254.172.1/22`, "host bits"},
		{`169.254.172.0/22`, `169.254.172.0/31`, "too small"},
		{`"dataDir":"/run/cni/v6pd/egress-v4-ipam"`, `"dataDir":""`, "dataDir is empty"},
		{`"dst":"0.0.0.0/0"`, `"dst":"::/0"`, "not of the range's family"},
	} {
		_, err := ParseConfig([]byte(strings.Replace(upstreamV4, tc.old, tc.new, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s → %s: error %v, want it to contain %q", tc.old, tc.new, err, tc.want)
		}
	}
	if _, err := ParseConfig([]byte("{")); err == nil {
		t.Error("broken JSON accepted")
	}
}

func TestChainNameAndComment(t *testing.T) {
	c := ChainName(V4, "aws-cni", "abc")
	if len(c) != 28 || !strings.HasPrefix(c, "CNI-E4-") || c == ChainName(V4, "aws-cni", "abd") {
		t.Errorf("chain %q", c)
	}
	if c6 := ChainName(V6, "aws-cni", "abc"); !strings.HasPrefix(c6, "CNI-E6-") || c6[7:] != c[7:] {
		t.Errorf("v6 chain %q", c6)
	}
	if got := Comment("aws-cni", "abc"); got != `name: "aws-cni" id: "abc"` {
		t.Errorf("comment %q", got)
	}
	if h := HostVethName("abc", "eth0"); len(h) != 15 || !strings.HasPrefix(h, "egr") || h == HostVethName("abc", "eth1") {
		t.Errorf("host veth %q", h)
	}
}

func TestSplitRule(t *testing.T) {
	line := `-A POSTROUTING -s 169.254.172.2/32 -m comment --comment "name: \"aws-cni\" id: \"c 1\"" -j CNI-E4-x`
	got := splitRule(line)
	want := []string{"-A", "POSTROUTING", "-s", "169.254.172.2/32", "-m", "comment", "--comment", `name: "aws-cni" id: "c 1"`, "-j", "CNI-E4-x"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("split\n got %q\nwant %q", got, want)
	}
	if !jumpsTo(got, "CNI-E4-x") || jumpsTo(got, "CNI-E4-y") {
		t.Error("jumpsTo")
	}
}

func TestRestoreArgsRoundTrip(t *testing.T) {
	args := []string{"-s", "169.254.172.2/32", "-m", "comment", "--comment", Comment("aws-cni", `c "1" \x`), "-j", "CNI-E4-x"}
	line := restoreArgs(args)
	if got := splitRule(line); strings.Join(got, "|") != strings.Join(args, "|") {
		t.Errorf("%s splits into %q", line, got)
	}
}
