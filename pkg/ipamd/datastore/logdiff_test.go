package datastore

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// Whatever way the next File differs from the last one (entries
// appended, swapped with the last and dropped, moved between the lists,
// changed in place, the lists shuffled, an address given twice), the
// checkpoint read back after each write is exactly that File, through
// the log's records and the folds it goes through.
func TestLogDiffReadsBackEveryFile(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		m := newMemFS()
		lc := &LogCheckpointer{Path: memPath, fsys: m, CompactBytes: 3000, IdleFold: -1, prealloc: 1024}
		var f File
		next := 0
		addr := func() netip.Addr {
			next++
			return netip.AddrFrom4([4]byte{10, 1, byte(next >> 8), byte(next)})
		}
		at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		for step := range 200 {
			f = mutate(r, f, addr, at.Add(time.Duration(step)*time.Second))
			f.Version = CheckpointVersion
			if err := lc.Write(f); err != nil {
				t.Fatalf("seed %d step %d: write: %v", seed, step, err)
			}
			if hasDup(f) {
				continue // written whole; read back only by DecodeFile's rules
			}
			lc.mu.Lock()
			lc.waitFold() // a read runs at start-up, never beside a fold
			lc.mu.Unlock()
			got, err := readCheckpoint(m, memPath)
			if err != nil {
				t.Fatalf("seed %d step %d: read: %v", seed, step, err)
			}
			if want, have := entriesOf(f), entriesOf(got); !slices.Equal(want, have) {
				t.Fatalf("seed %d step %d: read back, missing %v, extra %v", seed, step, minus(want, have), minus(have, want))
			}
		}
		if err := lc.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// mutate changes f the way the store does, and in ways it does not.
func mutate(r *rand.Rand, f File, addr func() netip.Addr, now time.Time) File {
	allocs := slices.Clone(f.Allocations)
	cool := slices.Clone(f.Cooling)
	for range 1 + r.IntN(3) {
		switch k := r.IntN(10); {
		case k < 3 || len(allocs) == 0: // an ADD
			a := addr()
			allocs = append(allocs, Allocation{Key: keyOf(a), Addr: a, AssignedAt: now, Meta: podMeta(r.IntN(10))})
		case k < 5: // a DEL: swap with the last, the address starts cooling
			i := r.IntN(len(allocs))
			a := allocs[i]
			allocs[i] = allocs[len(allocs)-1]
			allocs = allocs[:len(allocs)-1]
			cool = append(cool, Cooling{Addr: a.Addr, UnassignedAt: now})
			if len(cool) > 1 && r.IntN(2) == 0 {
				cool[0], cool[len(cool)-1] = cool[len(cool)-1], cool[0]
			}
		case k < 6 && len(cool) > 0: // a cooldown ends
			i := r.IntN(len(cool))
			cool[i] = cool[len(cool)-1]
			cool = cool[:len(cool)-1]
		case k < 7 && len(cool) > 0: // a cooling address handed out again
			i := r.IntN(len(cool))
			a := cool[i].Addr
			cool = slices.Delete(cool, i, i+1)
			allocs = append(allocs, Allocation{Key: Key{NetworkName: "aws-cni", ContainerID: fmt.Sprint("again-", now.Unix(), "-", a), IfName: "eth0"}, Addr: a, AssignedAt: now})
		case k < 8: // an entry changed in place
			i := r.IntN(len(allocs))
			allocs[i].Meta.K8sPodName = fmt.Sprint("renamed-", r.IntN(100))
		case k < 9: // reordered
			r.Shuffle(len(allocs), func(i, j int) { allocs[i], allocs[j] = allocs[j], allocs[i] })
			r.Shuffle(len(cool), func(i, j int) { cool[i], cool[j] = cool[j], cool[i] })
		default: // an address twice (never from the store); undone next time
			if r.IntN(4) == 0 {
				allocs = append(allocs, Allocation{Key: podKey(9999), Addr: allocs[r.IntN(len(allocs))].Addr, AssignedAt: now})
			}
		}
	}
	if hasDup(f) { // undo the last duplicate
		allocs = slices.DeleteFunc(allocs, func(a Allocation) bool { return a.Key == podKey(9999) })
	}
	return File{Allocations: allocs, Cooling: cool}
}

// keyOf is a key no other address has.
func keyOf(a netip.Addr) Key {
	return Key{NetworkName: "aws-cni", ContainerID: "c-" + a.String(), IfName: "eth0"}
}

func hasDup(f File) bool {
	seen := map[netip.Addr]bool{}
	for _, a := range f.Allocations {
		if seen[a.Addr] {
			return true
		}
		seen[a.Addr] = true
	}
	for _, c := range f.Cooling {
		if seen[c.Addr] {
			return true
		}
		seen[c.Addr] = true
	}
	return false
}

// entriesOf renders f's entries, sorted, for comparison.
func entriesOf(f File) []string {
	var out []string
	for _, a := range f.Allocations {
		out = append(out, fmt.Sprintf("%s %s %d %+v", a.Addr, a.Key, a.AssignedAt.UnixNano(), a.Meta))
	}
	for _, c := range f.Cooling {
		out = append(out, fmt.Sprintf("%s cooling %d", c.Addr, c.UnassignedAt.UnixNano()))
	}
	slices.Sort(out)
	return out
}

// minus is what a holds and b does not.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
