package datastore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// oracleNext computes by brute force the address Assign must hand out next
// (dense packing), from the raw state.
func oracleNext(s *Store) (netip.Addr, bool) {
	var best *eni
	for _, e := range s.enis {
		if e.info.ExcludedForPods {
			continue
		}
		usable := false
		for _, c := range e.cidrs {
			usable = usable || (c.class == s.mode && c.available() > 0)
		}
		// Spelled out rather than eniLess, so the oracle checks the policy.
		if usable && (best == nil || e.assigned > best.assigned ||
			e.assigned == best.assigned && (e.info.DeviceNumber < best.info.DeviceNumber ||
				e.info.DeviceNumber == best.info.DeviceNumber && e.info.ID < best.info.ID)) {
			best = e
		}
	}
	if best == nil {
		return netip.Addr{}, false
	}
	var bc *cidr
	for _, c := range best.cidrs {
		if c.class == s.mode && c.available() > 0 && (bc == nil || c.assigned > bc.assigned ||
			c.assigned == bc.assigned && c.prefix.Addr().Less(bc.prefix.Addr())) {
			bc = c
		}
	}
	off := uint64(0)
	for bc.used[off] != nil {
		off++
	}
	return addrAt(bc.prefix, off), true
}

func randomCIDR(r *rand.Rand) netip.Prefix {
	switch r.IntN(4) {
	case 0:
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(16) * 16)}), 28)
	case 1:
		// May fall inside a /28 above: overlaps must be refused.
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(r.IntN(4)), byte(r.IntN(256))}), 32)
	case 2:
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(r.IntN(64))}), 32)
	default:
		b := [16]byte{0x20, 0x01, 0x0d, 0xb8, 9: byte(r.IntN(8))}
		if r.IntN(3) == 0 {
			b[15] = byte(r.IntN(256))
			return netip.PrefixFrom(netip.AddrFrom16(b), 128)
		}
		return netip.PrefixFrom(netip.AddrFrom16(b), 80)
	}
}

// cidrRef names a CIDR of an ENI.
type cidrRef struct {
	ENIID  string
	Prefix netip.Prefix
}

func TestRandomizedOperations(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			randomRun(t, seed, 3000)
		})
	}
}

func randomRun(t *testing.T, seed uint64, steps int) {
	r := rand.New(rand.NewPCG(seed, 42))
	f := newFixture(t, Mode(r.IntN(numModes)), time.Duration(r.IntN(3))*10*time.Second)
	model := map[Key]netip.Addr{}
	const keys = 120
	eniIDs := []string{}
	for i := range 3 {
		id := fmt.Sprintf("eni-%d", i)
		f.eni(id, i)
		eniIDs = append(eniIDs, id)
	}
	nextENI := 3
	for step := 0; step < steps; step++ {
		desc := ""
		switch op := r.IntN(100); {
		case op < 40: // ADD
			k := podKey(r.IntN(keys))
			desc = "assign " + k.String()
			f.s.Stats() // apply expired cooldowns before consulting the oracle
			held, isHeld := model[k]
			if sl := f.s.byKey[k]; sl != nil && sl.cidr == nil {
				isHeld = false // pending: re-assigned from the pool
			}
			want, ok := oracleNext(f.s)
			failing := r.IntN(20) == 0
			if failing {
				f.cp.SetErr(errors.New("injected"))
			}
			a, err := f.s.Assign(k, podMeta(1))
			f.cp.SetErr(nil)
			switch {
			case isHeld:
				if err != nil || a.Addr != held {
					t.Fatalf("step %d: idempotent %s: %+v %v, want %s", step, desc, a, err, held)
				}
			case !ok:
				if !errors.Is(err, ErrNoAvailableAddress) {
					t.Fatalf("step %d: %s: %+v %v, want ErrNoAvailableAddress", step, desc, a, err)
				}
				if _, still := model[k]; still {
					if _, found := f.s.Lookup(k); !found {
						t.Fatalf("step %d: failed ADD lost pending key %s", step, k)
					}
				}
			case failing:
				if !errors.Is(err, ErrCheckpoint) {
					t.Fatalf("step %d: %s with failing checkpoint: %v", step, desc, err)
				}
			default:
				if err != nil || a.Addr != want {
					t.Fatalf("step %d: %s: %+v %v, want %s", step, desc, a, err, want)
				}
				model[k] = a.Addr
			}
		case op < 70: // DEL
			k := podKey(r.IntN(keys))
			desc = "unassign " + k.String()
			failing := r.IntN(20) == 0
			if failing {
				f.cp.SetErr(errors.New("injected"))
			}
			a, err := f.s.Unassign(k)
			f.cp.SetErr(nil)
			held, isHeld := model[k]
			switch {
			case !isHeld:
				if !errors.Is(err, ErrUnknownPod) {
					t.Fatalf("step %d: %s: %v, want ErrUnknownPod", step, desc, err)
				}
			case failing:
				// The release stands despite the failed write.
				if !errors.Is(err, ErrCheckpoint) || a.Addr != held {
					t.Fatalf("step %d: %s: %+v %v, want ErrCheckpoint with %s", step, desc, a, err, held)
				}
				delete(model, k)
			default:
				if err != nil || a.Addr != held {
					t.Fatalf("step %d: %s: %+v %v, want %s", step, desc, a, err, held)
				}
				delete(model, k)
			}
		case op < 78:
			d := time.Duration(r.IntN(15)) * time.Second
			desc = "advance " + d.String()
			f.clock.advance(d)
		case op < 86: // add a CIDR
			id := eniIDs[r.IntN(len(eniIDs))]
			p := randomCIDR(r)
			desc = "add " + p.String() + " to " + id
			f.s.mu.Lock()
			overlap := f.s.overlapping(p) != nil
			exists := f.s.enis[id] != nil
			f.s.mu.Unlock()
			brute := false
			for q := range f.s.cidrs {
				brute = brute || q.Overlaps(p)
			}
			if brute != overlap {
				t.Fatalf("step %d: overlap index says %v for %s, brute force %v", step, overlap, p, brute)
			}
			err := f.s.AddCIDR(id, p)
			switch {
			case !exists:
				if !errors.Is(err, ErrUnknownENI) {
					t.Fatalf("step %d: %s: %v", step, desc, err)
				}
			case overlap:
				if !errors.Is(err, ErrDuplicateCIDR) {
					t.Fatalf("step %d: %s: %v, want ErrDuplicateCIDR", step, desc, err)
				}
			case err != nil:
				t.Fatalf("step %d: %s: %v", step, desc, err)
			}
		case op < 91: // remove a CIDR
			var ref cidrRef
			for p, c := range f.s.cidrs {
				ref = cidrRef{c.eni.info.ID, p}
				break
			}
			if ref.ENIID == "" {
				continue
			}
			force := r.IntN(2) == 0
			desc = fmt.Sprintf("remove %s force=%v", ref.Prefix, force)
			busy := f.s.cidrs[ref.Prefix].assigned > 0
			ev, err := f.s.RemoveCIDR(ref.ENIID, ref.Prefix, force)
			if busy && !force {
				if !errors.Is(err, ErrCIDRInUse) {
					t.Fatalf("step %d: %s: %v", step, desc, err)
				}
				break
			}
			if err != nil {
				t.Fatalf("step %d: %s: %v", step, desc, err)
			}
			for _, a := range ev {
				if model[a.Key] != a.Addr || !ref.Prefix.Contains(a.Addr) {
					t.Fatalf("step %d: %s evicted %+v not held as such", step, desc, a)
				}
				// Kept, pending, for the pod that has had no DEL.
				if held, ok := f.s.Lookup(a.Key); !ok || held.Addr != a.Addr || held.ENIID != "" {
					t.Fatalf("step %d: %s evicted %+v, not quarantined: %+v %v", step, desc, a, held, ok)
				}
			}
		case op < 93: // add an ENI
			id := fmt.Sprintf("eni-%d", nextENI)
			desc = "add " + id
			f.eni(id, nextENI)
			nextENI++
			eniIDs = append(eniIDs, id)
		case op < 95: // remove an ENI
			id := eniIDs[r.IntN(len(eniIDs))]
			force := r.IntN(2) == 0
			desc = fmt.Sprintf("remove %s force=%v", id, force)
			e := f.s.enis[id]
			ev, err := f.s.RemoveENI(id, force)
			switch {
			case e == nil:
				if !errors.Is(err, ErrUnknownENI) {
					t.Fatalf("step %d: %s: %v", step, desc, err)
				}
			case e.assigned > 0 && !force:
				if !errors.Is(err, ErrENIInUse) {
					t.Fatalf("step %d: %s: %v", step, desc, err)
				}
			case err != nil:
				t.Fatalf("step %d: %s: %v", step, desc, err)
			}
			for _, a := range ev {
				if model[a.Key] != a.Addr || a.ENIID != id {
					t.Fatalf("step %d: %s evicted %+v not held as such", step, desc, a)
				}
				// Kept, pending, for the pod that has had no DEL.
				if held, ok := f.s.Lookup(a.Key); !ok || held.Addr != a.Addr || held.ENIID != "" {
					t.Fatalf("step %d: %s evicted %+v, not quarantined: %+v %v", step, desc, a, held, ok)
				}
			}
		case op < 98:
			id := eniIDs[r.IntN(len(eniIDs))]
			v := r.IntN(3) == 0
			desc = fmt.Sprintf("exclude %s %v", id, v)
			if err := f.s.SetExcluded(id, v); err != nil && !errors.Is(err, ErrUnknownENI) {
				t.Fatalf("step %d: %s: %v", step, desc, err)
			}
		case op < 99:
			m := Mode(r.IntN(numModes))
			desc = "mode " + m.String()
			if err := f.s.SetMode(m); err != nil {
				t.Fatal(err)
			}
		default: // restart: a new store restored from the checkpoint
			desc = "restart"
			f = restart(t, f, r, model)
		}
		checkInvariants(t, f.s)
		if got := f.s.AllocatedIPs(); len(got) != len(model) {
			t.Fatalf("step %d (%s): store holds %d, model %d", step, desc, len(got), len(model))
		} else {
			for _, a := range got {
				if model[a.Key] != a.Addr {
					t.Fatalf("step %d (%s): %s holds %s, model %s", step, desc, a.Key, a.Addr, model[a.Key])
				}
			}
		}
		st := f.s.Stats()
		if st.TotalIPs != st.AssignedIPs+st.CoolingIPs+st.AvailableIPs || st.AvailableIPs < 0 || st.Pods != len(model) {
			t.Fatalf("step %d (%s): stats inconsistent %+v", step, desc, st)
		}
	}
}

// restart rebuilds the store from its ENIs, CIDRs and checkpoint, as ipamd
// does after a restart, and checks nothing was lost.
func restart(t *testing.T, f *fixture, r *rand.Rand, model map[Key]netip.Addr) *fixture {
	t.Helper()
	file, err := f.cp.Read()
	if err != nil && f.cp.file != nil {
		t.Fatal(err)
	}
	g := &fixture{t: t, clock: f.clock, cp: &MemCheckpointer{}}
	g.s, err = New(Options{Mode: f.s.mode, CooldownPeriod: f.s.cooldown, Checkpointer: g.cp, Now: g.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	// Sometimes one CIDR holding pods is not known at restart (IMDS lag):
	// its pods must come back pending, then be adopted when it returns.
	var lagging cidrRef
	for _, e := range f.s.ENIs() {
		var cidrs []string
		for _, c := range e.CIDRs {
			if lagging.ENIID == "" && c.Assigned > 0 && r.IntN(2) == 0 {
				lagging = cidrRef{e.ID, c.Prefix}
				continue
			}
			cidrs = append(cidrs, c.Prefix.String())
		}
		g.eniInfo(e.ENI, cidrs...)
	}
	if f.cp.file == nil {
		return g
	}
	// A file left stale by a failed write still names keys released since:
	// their pods are gone, so the restore drops them as stale.
	stale := f.s.unpersisted
	res, err := g.s.Restore(file, func(a Allocation) bool { _, live := model[a.Key]; return live })
	if err != nil {
		t.Fatal(err)
	}
	if !stale && len(res.Stale) != 0 {
		t.Fatalf("restart from an up-to-date checkpoint found stale entries: %+v", res.Stale)
	}
	if lagging.ENIID != "" {
		if len(res.Unknown) == 0 {
			t.Fatalf("CIDR %s with pods missing at restart, yet nothing pending", lagging.Prefix)
		}
		checkInvariants(t, g.s)
		if r.IntN(2) == 0 {
			if err := g.s.AddCIDR(lagging.ENIID, lagging.Prefix); err != nil {
				t.Fatal(err)
			}
		}
	}
	before, after := f.s.Stats(), g.s.Stats()
	if lagging.ENIID != "" {
		if g.s.cidrs[lagging.Prefix] == nil {
			if after.Pods != before.Pods {
				t.Fatalf("restart lost pods: %+v -> %+v", before, after)
			}
			return g
		}
	}
	if stale {
		// Cooling entries written since the failure are not in the file.
		if after.Pods != before.Pods {
			t.Fatalf("restart from a stale checkpoint: pods %d -> %d", before.Pods, after.Pods)
		}
		return g
	}
	if len(res.Restored)+len(res.Unknown) != before.Pods || after != before {
		t.Fatalf("restart changed the pool: %+v -> %+v (%d restored, %d unknown)", before, after, len(res.Restored), len(res.Unknown))
	}
	return g
}

// Concurrent ADD/DEL/queries from many goroutines (run with -race): no
// address is ever held by two keys and the counters stay exact.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, ModePrefixIPv4, 0)
	f.eni("eni-0", 0, "10.0.0.0/28", "10.0.0.16/28")
	f.eni("eni-1", 1, "10.0.1.0/28")
	const workers, rounds = 8, 300
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				k := podKey(w*rounds + i)
				a, err := f.s.Assign(k, podMeta(i))
				if errors.Is(err, ErrNoAvailableAddress) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if got, ok := f.s.Lookup(k); !ok || got.Addr != a.Addr {
					errs <- fmt.Errorf("%s: lookup %+v %v after assign %s", k, got, ok, a.Addr)
					return
				}
				switch i % 3 {
				case 0:
					_ = f.s.Stats()
				case 1:
					_ = f.s.Snapshot()
				default:
					_ = f.s.ENIs()
				}
				if i%4 != 0 { // leave some pods behind
					if _, err := f.s.Unassign(k); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkInvariants(t, f.s)
	seen := map[netip.Addr]bool{}
	for _, a := range f.s.AllocatedIPs() {
		if seen[a.Addr] {
			t.Fatalf("%s held twice", a.Addr)
		}
		seen[a.Addr] = true
	}
	if st := f.s.Stats(); st.AssignedIPs != len(seen) || st.AssignedIPs == 0 {
		t.Fatalf("stats %+v, %d held", st, len(seen))
	}
}
