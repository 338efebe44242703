package vpcsim

import (
	"net/netip"
	"strings"
	"testing"
)

func TestCatalogFacts(t *testing.T) {
	want := map[string]struct{ enis, ipv4, cards int }{
		"t3.medium": {3, 6, 1}, "m5.large": {3, 10, 1}, "m5.xlarge": {4, 15, 1}, "c5.4xlarge": {8, 30, 1},
		"m4.large": {2, 10, 1}, "m5.metal": {15, 50, 1}, "p4d.24xlarge": {60, 50, 4}, "c6in.32xlarge": {16, 50, 2},
		"m7g.medium": {2, 4, 1}, "r5.large": {3, 10, 1}, "m6i.large": {3, 10, 1},
	}
	for name, w := range want {
		it, ok := LookupInstanceType(name)
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if it.MaxENIs != w.enis || it.IPv4PerENI != w.ipv4 || len(it.Cards) != w.cards {
			t.Errorf("%s: %d ENIs, %d IPv4, %d cards; want %+v", name, it.MaxENIs, it.IPv4PerENI, len(it.Cards), w)
		}
	}
	families := map[string]int{}
	for _, it := range InstanceTypes() {
		sum := 0
		for i, c := range it.Cards {
			if c.Index != i || c.MaxENIs < 1 {
				t.Errorf("%s: bad card %+v", it.Name, c)
			}
			sum += c.MaxENIs
		}
		if sum < it.MaxENIs || it.IPv4PerENI < 2 || it.IPv6PerENI < 1 {
			t.Errorf("%s: inconsistent %+v", it.Name, it)
		}
		if it.BareMetal != (it.Hypervisor == "") {
			t.Errorf("%s: bare metal %v with hypervisor %q", it.Name, it.BareMetal, it.Hypervisor)
		}
		if it.Hypervisor == "xen" && (it.Trunking || it.PrefixDelegation()) {
			t.Errorf("%s: xen types have no trunking or prefixes", it.Name)
		}
		fam, _, _ := strings.Cut(it.Name, ".")
		families[fam]++
	}
	for _, f := range []string{"t3", "m5", "m6i", "c5", "r5", "m7g"} {
		if families[f] < 4 {
			t.Errorf("family %s has %d sizes", f, families[f])
		}
	}
	// max pods in secondary-IP mode, as upstream computes it
	for name, pods := range map[string]int{"m5.large": 29, "m5.xlarge": 58, "t3.medium": 17, "c5.4xlarge": 234} {
		it, _ := LookupInstanceType(name)
		if got := it.MaxENIs*(it.IPv4PerENI-1) + 2; got != pods {
			t.Errorf("%s max pods %d, want %d", name, got, pods)
		}
	}
}

func TestV4PoolReservedLowestFirstAndFragmentation(t *testing.T) {
	p := newV4Pool(netip.MustParsePrefix("10.0.0.0/26"))
	if p.Free() != 59 {
		t.Fatalf("free %d, want 64-5", p.Free())
	}
	a, _ := p.allocN(2)
	if a[0].String() != "10.0.0.4" || a[1].String() != "10.0.0.5" {
		t.Fatalf("lowest free first: %v", a)
	}
	if err := p.take(netip.MustParseAddr("10.0.0.63")); err == nil {
		t.Fatal("broadcast must be reserved")
	}
	if err := p.take(netip.MustParseAddr("10.0.0.20")); err != nil {
		t.Fatal(err)
	}
	// blocks: .0 (reserved), .16 (holds .20), .32 free, .48 (broadcast)
	b, ok := p.allocBlocks(1)
	if !ok || b[0].String() != "10.0.0.32/28" {
		t.Fatalf("block: %v %v", b, ok)
	}
	if _, ok := p.allocBlocks(1); ok {
		t.Fatal("no aligned block left, yet one was handed out")
	}
	if _, ok := p.allocN(p.Free()); !ok || p.Free() != 0 {
		t.Fatalf("could not take every remaining address, %d left", p.Free())
	}
	p.releaseBlock(b[0])
	if p.Free() != 16 {
		t.Fatalf("free after releasing a block: %d", p.Free())
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		p, s string
		ok   bool
	}{{"aws-K8S-*", "aws-K8S-i-1", true}, {"a?c", "abc", true}, {"a?c", "ac", false}, {"*", "", true}, {"x*y*z", "xaybz", true}, {"x*y", "xyz", false}} {
		if glob(c.p, c.s) != c.ok {
			t.Errorf("glob(%q, %q) != %v", c.p, c.s, c.ok)
		}
	}
}
