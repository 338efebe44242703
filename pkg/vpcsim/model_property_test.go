package vpcsim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func propertyScenario() Scenario {
	return Scenario{
		Region: "us-west-2", AvailabilityZones: []string{"us-west-2a", "us-west-2b"},
		VPCs: []VPCSpec{{
			ID: "vpc-00000001", CIDR: "10.0.0.0/16", IPv6CIDR: "2600:1f14:abc:de00::/56",
			Subnets: []SubnetSpec{
				{ID: "subnet-0000000a", AZ: "us-west-2a", CIDR: "10.0.0.0/26"},
				{ID: "subnet-0000000b", AZ: "us-west-2a", CIDR: "10.0.1.0/24", MapPublicIP: true},
				{ID: "subnet-0000000c", AZ: "us-west-2b", CIDR: "10.0.2.0/27"},
			},
			SecurityGroups: []SecurityGroupSpec{{ID: "sg-00000001", Name: "default"}, {ID: "sg-00000002", Name: "other"}},
		}},
		Instances: []InstanceSpec{
			{ID: "i-00000001", Type: "t3.medium", Subnet: "subnet-0000000a"},
			{ID: "i-00000002", Type: "m5.large", Subnet: "subnet-0000000b"},
			{ID: "i-00000003", Type: "c6in.32xlarge", Subnet: "subnet-0000000c"},
			{ID: "i-00000004", Type: "t2.medium", Subnet: "subnet-0000000b"},
		},
	}
}

// TestModelInvariantsUnderRandomOperations applies seeded random operation
// sequences (valid and invalid) and checks the invariants after every step.
func TestModelInvariantsUnderRandomOperations(t *testing.T) {
	seeds := 40
	steps := 400
	if testing.Short() {
		seeds, steps = 5, 200
	}
	for seed := 1; seed <= seeds; seed++ {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		w, err := newWorld(propertyScenario(), func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		w.attachDelay, w.detachDelay = time.Second, 2*time.Second
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		var trace []string
		for step := 0; step < steps; step++ {
			op := randomOp(w, r)
			err := op.run(w)
			trace = append(trace, fmt.Sprintf("%s → %v", op.name, err))
			w.events = nil
			if r.IntN(4) == 0 {
				now = now.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
				w.settle()
			}
			if err := checkInvariants(w); err != nil {
				start := max(0, len(trace)-10)
				t.Fatalf("seed %d step %d: %v\nlast operations:\n%v", seed, step, err, trace[start:])
			}
		}
	}
}

type op struct {
	name string
	run  func(w *world) error
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func randomOp(w *world, r *rand.Rand) op {
	enis := sortedKeys(w.enis)
	enis = append(enis, "eni-missing")
	insts := sortedKeys(w.instances)
	subnets := []string{"subnet-0000000a", "subnet-0000000b", "subnet-0000000c", "subnet-x"}
	eniID := pick(r, enis)
	someAddr := func() netip.Addr {
		sn := w.subnets[pick(r, subnets[:3])]
		return u32v4(sn.v4.base + uint32(r.IntN(sn.v4.size)))
	}
	switch r.IntN(13) {
	case 0, 1:
		req := createENIReq{SubnetID: pick(r, subnets), InterfaceType: pick(r, []string{"", "trunk"})}
		switch r.IntN(4) {
		case 0:
			req.SecondaryCount = r.IntN(12)
		case 1:
			req.PrefixCount = r.IntN(3)
		case 2:
			req.IPv6PrefixCount = r.IntN(2)
			req.IPv6Count = r.IntN(3)
		case 3:
			req.PrimaryIP = someAddr()
			req.SecondaryIPs = []netip.Addr{someAddr()}
		}
		return op{fmt.Sprintf("create %+v", req), func(w *world) error { _, err := w.createENI(req); return err }}
	case 2, 3:
		in, dev, card := pick(r, insts), r.IntN(4), r.IntN(3)
		return op{fmt.Sprintf("attach %s→%s dev %d card %d", eniID, in, dev, card), func(w *world) error { _, err := w.attachENI(eniID, in, dev, card, false); return err }}
	case 4:
		att := "eni-attach-missing"
		if e, ok := w.enis[eniID]; ok && e.att != nil {
			att = e.att.id
		}
		return op{"detach " + att, func(w *world) error { return w.detachENI(att, false) }}
	case 5:
		return op{"delete " + eniID, func(w *world) error { return w.deleteENI(eniID) }}
	case 6, 7:
		req := assignReq{ENIID: eniID}
		switch r.IntN(3) {
		case 0:
			req.Count = 1 + r.IntN(6)
		case 1:
			req.PrefixCount = 1 + r.IntN(2)
		case 2:
			req.Addrs = []netip.Addr{someAddr(), someAddr()}
		}
		return op{fmt.Sprintf("assign %+v", req), func(w *world) error { _, err := w.assignPrivate(req); return err }}
	case 8:
		var addrs []netip.Addr
		var prefixes []netip.Prefix
		if e, ok := w.enis[eniID]; ok {
			if len(e.secondary) > 0 && r.IntN(2) == 0 {
				addrs = append(addrs, pick(r, e.secondary))
			} else if len(e.prefixes) > 0 {
				prefixes = append(prefixes, pick(r, e.prefixes))
			} else {
				addrs = append(addrs, e.primaryIP)
			}
		}
		return op{fmt.Sprintf("unassign %s %v %v", eniID, addrs, prefixes), func(w *world) error { return w.unassignPrivate(eniID, addrs, prefixes) }}
	case 9:
		req := assignReq{ENIID: eniID, Count: r.IntN(3), PrefixCount: r.IntN(2)}
		return op{fmt.Sprintf("assign6 %+v", req), func(w *world) error { _, err := w.assignIPv6(req); return err }}
	case 10:
		var prefixes []netip.Prefix
		var addrs []netip.Addr
		if e, ok := w.enis[eniID]; ok {
			if len(e.ipv6Prefixes) > 0 {
				prefixes = append(prefixes, e.ipv6Prefixes[0])
			}
			if len(e.ipv6) > 0 {
				addrs = append(addrs, e.ipv6[0])
			}
		}
		return op{"unassign6 " + eniID, func(w *world) error { _, err := w.unassignIPv6(eniID, addrs, prefixes); return err }}
	case 11:
		spec := InstanceSpec{Type: pick(r, []string{"m5.large", "t3.medium", "p4d.24xlarge", "x1.nope"}), Subnet: pick(r, subnets)}
		return op{fmt.Sprintf("run %+v", spec), func(w *world) error { _, err := w.runInstance(spec); return err }}
	default:
		id := pick(r, insts)
		return op{"terminate " + id, func(w *world) error { return w.terminateInstance(id) }}
	}
}

// checkInvariants verifies: every address/prefix belongs to at most one ENI,
// lies in its subnet and is never a reserved address; subnet pools account
// for exactly the addresses in use; instances never exceed their type.
func checkInvariants(w *world) error {
	owner := map[netip.Addr]string{} // every IPv4 address covered by any ENI
	used := map[string]int{}         // per subnet: addresses in use
	for _, e := range w.enis {
		sn := w.subnets[e.subnetID]
		claim := func(a netip.Addr) error {
			off, ok := sn.v4.offset(a)
			if !ok {
				return fmt.Errorf("%s holds %s outside subnet %s", e.id, a, sn.cidr)
			}
			if sn.v4.reserved(off) {
				return fmt.Errorf("%s holds reserved address %s", e.id, a)
			}
			if !sn.v4.isSet(off) {
				return fmt.Errorf("%s holds %s which the pool thinks is free", e.id, a)
			}
			if o, dup := owner[a]; dup {
				return fmt.Errorf("%s held by %s and %s", a, o, e.id)
			}
			owner[a] = e.id
			used[sn.id]++
			return nil
		}
		if err := claim(e.primaryIP); err != nil {
			return err
		}
		for _, a := range e.secondary {
			if err := claim(a); err != nil {
				return err
			}
		}
		for _, p := range e.prefixes {
			if p.Bits() != 28 || p.Masked() != p {
				return fmt.Errorf("%s holds unaligned prefix %s", e.id, p)
			}
			for a, i := p.Addr(), 0; i < 16; a, i = a.Next(), i+1 {
				if err := claim(a); err != nil {
					return err
				}
			}
		}
		v6 := map[netip.Prefix]bool{}
		for _, a := range e.ipv6 {
			if sn.v6 == nil || !sn.ipv6.Contains(a) {
				return fmt.Errorf("%s holds IPv6 %s outside subnet", e.id, a)
			}
		}
		for _, p := range e.ipv6Prefixes {
			if p.Bits() != 80 || !sn.ipv6.Contains(p.Addr()) || v6[p] {
				return fmt.Errorf("%s holds bad IPv6 prefix %s", e.id, p)
			}
			v6[p] = true
			for _, a := range e.ipv6 {
				if p.Contains(a) {
					return fmt.Errorf("%s: IPv6 address %s inside its prefix %s", e.id, a, p)
				}
			}
		}
		if e.att != nil {
			if w.attachments[e.att.id] != e {
				return fmt.Errorf("%s: attachment %s not indexed", e.id, e.att.id)
			}
			in := w.instances[e.att.instanceID]
			if in == nil || in.state != "running" {
				return fmt.Errorf("%s attached to non-running instance %s", e.id, e.att.instanceID)
			}
			if e.ipv4Count() > in.typ.IPv4PerENI || e.ipv6Count() > in.typ.IPv6PerENI {
				return fmt.Errorf("%s on %s holds %d IPv4 / %d IPv6 slots, limit %d / %d", e.id, in.typ.Name, e.ipv4Count(), e.ipv6Count(), in.typ.IPv4PerENI, in.typ.IPv6PerENI)
			}
			if len(e.prefixes) > 0 && !in.typ.PrefixDelegation() {
				return fmt.Errorf("%s holds prefixes on %s", e.id, in.typ.Name)
			}
		} else if e.ipv4Count() > unattachedIPv4Limit {
			return fmt.Errorf("%s unattached with %d addresses", e.id, e.ipv4Count())
		}
	}
	// IPv6 ownership across ENIs
	v6owner := map[netip.Addr]string{}
	for _, e := range w.enis {
		for _, a := range e.ipv6 {
			if o, dup := v6owner[a]; dup {
				return fmt.Errorf("IPv6 %s held by %s and %s", a, o, e.id)
			}
			v6owner[a] = e.id
		}
		for _, p := range e.ipv6Prefixes {
			if o, dup := v6owner[p.Addr()]; dup {
				return fmt.Errorf("IPv6 prefix %s held by %s and %s", p, o, e.id)
			}
			v6owner[p.Addr()] = e.id
		}
	}
	for id, sn := range w.subnets {
		if want := sn.v4.size - 5 - used[id]; sn.v4.Free() != want {
			return fmt.Errorf("subnet %s: pool says %d free, ENIs imply %d", id, sn.v4.Free(), want)
		}
	}
	for id := range w.attachments {
		if w.attachments[id].att == nil || w.attachments[id].att.id != id {
			return fmt.Errorf("stale attachment index %s", id)
		}
	}
	for _, in := range w.instances {
		perCard := map[int]int{}
		devs := map[[2]int]bool{}
		enis := w.instanceENIs(in.id)
		if in.state != "running" && len(enis) > 0 {
			return fmt.Errorf("terminated %s still has ENIs", in.id)
		}
		for _, e := range enis {
			perCard[e.att.card]++
			k := [2]int{e.att.card, e.att.deviceIndex}
			if devs[k] {
				return fmt.Errorf("%s: two ENIs at card %d device %d", in.id, k[0], k[1])
			}
			devs[k] = true
		}
		if len(enis) > in.typ.MaxENIs {
			return fmt.Errorf("%s (%s) has %d ENIs, limit %d", in.id, in.typ.Name, len(enis), in.typ.MaxENIs)
		}
		for _, c := range in.typ.Cards {
			if perCard[c.Index] > c.MaxENIs {
				return fmt.Errorf("%s card %d has %d ENIs, limit %d", in.id, c.Index, perCard[c.Index], c.MaxENIs)
			}
		}
	}
	return nil
}
