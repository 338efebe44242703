package vpcsim

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestTrunkInvariantsUnderRandomOperations applies seeded random trunking
// operations (valid and invalid) and checks after every step that VLAN ids
// are unique per trunk and that no branch outlives its trunk.
func TestTrunkInvariantsUnderRandomOperations(t *testing.T) {
	seeds, steps := 30, 300
	if testing.Short() {
		seeds, steps = 5, 200
	}
	made := 0 // associations that succeeded: the operations must reach the model
	for seed := 1; seed <= seeds; seed++ {
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		w, err := newWorld(propertyScenario(), func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(uint64(seed), 11))
		var trace []string
		for step := 0; step < steps; step++ {
			op := randomTrunkOp(w, r)
			err := op.run(w)
			trace = append(trace, fmt.Sprintf("%s → %v", op.name, err))
			w.events = nil
			made = max(made, len(w.assocs))
			if err := checkTrunkInvariants(w); err != nil {
				t.Fatalf("seed %d step %d: %v\nlast operations:\n%v", seed, step, err, trace[max(0, len(trace)-10):])
			}
		}
	}
	if made < 2 {
		t.Fatalf("at most %d associations existed at once in any run: the random operations do not exercise trunking", made)
	}
}

func randomTrunkOp(w *world, r *rand.Rand) op {
	enis := append(sortedKeys(w.enis), "eni-missing")
	insts := sortedKeys(w.instances)
	assocs := append(sortedKeys(w.assocs), "trunk-assoc-missing")
	// few VLANs so that collisions are frequent
	vlan := pick(r, []int{0, 1, 2, 3, 4, 4094, 4095})
	var trunks []string
	for _, id := range enis[:len(enis)-1] {
		if w.enis[id].interfaceType == "trunk" {
			trunks = append(trunks, id)
		}
	}
	n := r.IntN(40)
	switch {
	case n < 8:
		typ := pick(r, []string{"trunk", "", "branch"})
		sn := pick(r, []string{"subnet-0000000a", "subnet-0000000b", "subnet-0000000c"})
		return op{"create " + typ + " in " + sn, func(w *world) error {
			_, err := w.createENI(createENIReq{SubnetID: sn, InterfaceType: typ})
			return err
		}}
	case n < 14:
		id, in, dev := pick(r, enis), pick(r, insts), 1+r.IntN(3)
		return op{fmt.Sprintf("attach %s to %s at %d", id, in, dev), func(w *world) error { _, err := w.attachENI(id, in, dev, 0, true); return err }}
	case n < 30:
		b, tr := pick(r, enis), pick(r, enis)
		if len(trunks) > 0 && r.IntN(5) > 0 {
			tr = pick(r, trunks) // mostly real trunks, so associations happen
		}
		return op{fmt.Sprintf("associate %s to %s vlan %d", b, tr, vlan), func(w *world) error {
			_, err := w.associateTrunk(associateReq{BranchID: b, TrunkID: tr, VLAN: &vlan})
			return err
		}}
	case n < 34:
		id := pick(r, assocs)
		return op{"disassociate " + id, func(w *world) error { return w.disassociateTrunk(id, "") }}
	case n < 39:
		id := pick(r, enis)
		return op{"detach+delete " + id, func(w *world) error {
			if e, ok := w.enis[id]; ok && e.att != nil {
				if err := w.detachENI(e.att.id, true); err != nil {
					return err
				}
			}
			return w.deleteENI(id)
		}}
	default:
		id := pick(r, insts)
		// a replacement keeps trunk-capable instances around
		return op{"terminate " + id + " and run another", func(w *world) error {
			if err := w.terminateInstance(id); err != nil {
				return err
			}
			_, err := w.runInstance(InstanceSpec{Type: "m5.large", Subnet: "subnet-0000000b"})
			return err
		}}
	}
}

func checkTrunkInvariants(w *world) error {
	vlans := map[string]map[int]string{} // trunk → VLAN → association
	branches := map[string]string{}      // branch → association
	for id, a := range w.assocs {
		trunk, ok := w.enis[a.trunkID]
		if !ok {
			return fmt.Errorf("association %s outlives its trunk %s", id, a.trunkID)
		}
		if trunk.interfaceType != "trunk" {
			return fmt.Errorf("association %s: %s is a %s, not a trunk", id, trunk.id, trunk.interfaceType)
		}
		b, ok := w.enis[a.branchID]
		if !ok {
			return fmt.Errorf("association %s outlives its branch %s", id, a.branchID)
		}
		if b.att != nil {
			return fmt.Errorf("branch %s is also attached to %s", b.id, b.att.instanceID)
		}
		if a.vlan < minVLAN || a.vlan > maxVLAN {
			return fmt.Errorf("association %s has VLAN %d", id, a.vlan)
		}
		if vlans[a.trunkID] == nil {
			vlans[a.trunkID] = map[int]string{}
		}
		if o, dup := vlans[a.trunkID][a.vlan]; dup {
			return fmt.Errorf("VLAN %d used twice on %s (%s, %s)", a.vlan, a.trunkID, o, id)
		}
		vlans[a.trunkID][a.vlan] = id
		if o, dup := branches[a.branchID]; dup {
			return fmt.Errorf("branch %s in two associations (%s, %s)", a.branchID, o, id)
		}
		branches[a.branchID] = id
	}
	return nil
}

// Every trunking type in the catalog carries exactly its branch limit.
func TestBranchLimitIsTheCatalogsForEveryTrunkingType(t *testing.T) {
	types := 0
	for _, it := range InstanceTypes() {
		if !it.Trunking {
			continue
		}
		types++
		sc := propertyScenario()
		sc.VPCs[0].Subnets = append(sc.VPCs[0].Subnets, SubnetSpec{ID: "subnet-000000b1", AZ: "us-west-2a", CIDR: "10.0.16.0/20"})
		sc.Instances = []InstanceSpec{{ID: "i-0000007e", Type: it.Name, Subnet: "subnet-000000b1"}}
		w, err := newWorld(sc, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		trunk, err := w.createENI(createENIReq{SubnetID: "subnet-000000b1", InterfaceType: "trunk"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.attachENI(trunk.id, "i-0000007e", 1, it.DefaultCard, true); err != nil {
			t.Fatalf("%s: attach trunk: %v", it.Name, err)
		}
		for vlan := 1; vlan <= it.BranchENIs+1; vlan++ {
			b, err := w.createENI(createENIReq{SubnetID: "subnet-000000b1"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.associateTrunk(associateReq{BranchID: b.id, TrunkID: trunk.id, VLAN: &vlan})
			switch {
			case vlan <= it.BranchENIs && err != nil:
				t.Fatalf("%s: branch %d of %d: %v", it.Name, vlan, it.BranchENIs, err)
			case vlan > it.BranchENIs && ErrorCode(err) != "AttachmentLimitExceeded":
				t.Fatalf("%s: branch %d over the limit of %d: %v", it.Name, vlan, it.BranchENIs, err)
			}
		}
	}
	if types < 10 {
		t.Fatalf("only %d trunking types in the catalog", types)
	}
}
