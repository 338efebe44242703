package chaos

import (
	"net/netip"
	"strings"
	"testing"
)

// TestAgreementFindsEachDisagreement: the checks the chaos run relies on
// report each kind of disagreement, and nothing when the views agree.
func TestAgreementFindsEachDisagreement(t *testing.T) {
	a := netip.MustParseAddr
	agreeing := func() (map[string]netip.Addr, map[string]string, map[string]bool, ipamdView, simView) {
		live := map[string]netip.Addr{"p1": a("10.0.0.10")}
		veths := map[string]string{veth("p1"): "p1"}
		host := map[string]bool{veth("p1"): true}
		ip := ipamdView{
			enis: map[string]map[netip.Addr]bool{"eni-1": {a("10.0.0.10"): true, a("10.0.0.11"): true}},
			pods: map[string]netip.Addr{"p1": a("10.0.0.10")},
		}
		sim := simView{enis: map[string]map[netip.Addr]bool{"eni-1": {a("10.0.0.10"): true, a("10.0.0.11"): true}}}
		return live, veths, host, ip, sim
	}
	live, veths, host, ip, sim := agreeing()
	if bad := agreement(live, veths, host, ip, sim); len(bad) != 0 {
		t.Fatalf("agreeing views reported: %q", bad)
	}
	for _, tc := range []struct {
		name   string
		mutate func(live map[string]netip.Addr, host map[string]bool, ip *ipamdView, sim *simView)
		want   string
	}{
		{"lost pod", func(_ map[string]netip.Addr, _ map[string]bool, ip *ipamdView, _ *simView) { delete(ip.pods, "p1") },
			"lost pod: p1 holds 10.0.0.10 but ipamd does not know it"},
		{"leaked address in ipamd", func(_ map[string]netip.Addr, _ map[string]bool, ip *ipamdView, _ *simView) {
			ip.pods["gone"] = a("10.0.0.11")
		}, "leaked address: ipamd holds 10.0.0.11 for pod gone"},
		{"address moved", func(_ map[string]netip.Addr, _ map[string]bool, ip *ipamdView, _ *simView) {
			ip.pods["p1"] = a("10.0.0.11")
		},
			"pod p1 holds 10.0.0.10 but ipamd says 10.0.0.11"},
		{"host link missing", func(_ map[string]netip.Addr, host map[string]bool, _ *ipamdView, _ *simView) { clear(host) },
			"host: live pod p1 has no link"},
		{"stray host link", func(_ map[string]netip.Addr, host map[string]bool, _ *ipamdView, _ *simView) {
			host["eni0123456789a"] = true
		},
			"host: link eni0123456789a belongs to no live pod"},
		{"EC2 address unknown to ipamd", func(_ map[string]netip.Addr, _ map[string]bool, _ *ipamdView, sim *simView) {
			sim.enis["eni-1"][a("10.0.0.12")] = true
		}, "leaked address: EC2 assigns 10.0.0.12 on eni-1, unknown to ipamd"},
		{"ipamd address not in EC2", func(_ map[string]netip.Addr, _ map[string]bool, _ *ipamdView, sim *simView) {
			delete(sim.enis["eni-1"], a("10.0.0.11"))
		}, "ipamd holds 10.0.0.11 on eni-1, which EC2 has not assigned"},
		{"ENI unknown to ipamd", func(_ map[string]netip.Addr, _ map[string]bool, _ *ipamdView, sim *simView) {
			sim.enis["eni-2"] = map[netip.Addr]bool{}
		}, "leaked ENI: eni-2 is attached to the node but unknown to ipamd"},
		{"detached ENI", func(_ map[string]netip.Addr, _ map[string]bool, _ *ipamdView, sim *simView) {
			sim.detached = []string{"eni-3"}
		},
			"leaked ENI: eni-3 is tagged for the node but detached"},
		{"ENI not in EC2", func(_ map[string]netip.Addr, _ map[string]bool, _ *ipamdView, sim *simView) {
			delete(sim.enis, "eni-1")
		},
			"ipamd uses ENI eni-1, which EC2 has not attached to the node"},
		{"duplicate in ipamd", func(_ map[string]netip.Addr, _ map[string]bool, ip *ipamdView, _ *simView) {
			ip.dupes = []string{"address 10.0.0.10 held by p1 and p2"}
		}, "address 10.0.0.10 held by p1 and p2"},
	} {
		live, veths, host, ip, sim := agreeing()
		tc.mutate(live, host, &ip, &sim)
		bad := agreement(live, veths, host, ip, sim)
		if !strings.Contains(strings.Join(bad, "\n"), tc.want) {
			t.Errorf("%s: reported %q, want a line containing %q", tc.name, bad, tc.want)
		}
	}
}
