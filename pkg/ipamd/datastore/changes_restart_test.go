package datastore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// flakyWrites fails a Write when told to (under its own lock: the store's
// writer calls it while the test's goroutines run).
type flakyWrites struct {
	*LogCheckpointer
	mu   sync.Mutex
	fail bool
}

func (f *flakyWrites) Write(file File) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("injected")
	}
	return f.LogCheckpointer.Write(file)
}

func (f *flakyWrites) setFail(on bool) {
	f.mu.Lock()
	f.fail = on
	f.mu.Unlock()
}

// liveFile is the store's lists now: what its next checkpoint must hold.
func liveFile(s *Store) File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return File{Allocations: slices.Clone(s.allocs), Cooling: slices.Clone(s.cool)}
}

// Through lives of a store on one log checkpoint, each restored from the
// last (some of its CIDRs not known yet: pending entries, then adopted or
// dropped), with assignments and releases racing in group-committed
// batches, cooldowns ending, CIDRs and ENIs removed with their pods, folds
// and failed writes: after every round the log read back holds exactly
// the store's lists, and after a Close upstream's reader finds exactly the
// store's allocations.
func TestChangesSurviveRestartsAndRaces(t *testing.T) {
	for seed := range uint64(6) {
		v6 := seed%3 == 2
		t.Run(fmt.Sprintf("seed=%d,v6=%v", seed, v6), func(t *testing.T) {
			changesLives(t, seed, v6)
		})
	}
}

func changesLives(t *testing.T, seed uint64, v6 bool) {
	r := rand.New(rand.NewPCG(seed, 23))
	m := newMemFS()
	clock := newClock()
	mode := ModePrefixIPv4
	cidrs := map[string][]string{"eni-0": {"10.0.0.0/28", "10.0.0.16/28"}, "eni-1": {"10.0.1.0/28"}, "eni-2": {"10.0.2.0/28", "10.0.2.16/28"}}
	if v6 {
		// /80s: hand out sequentially from each, so a few keys reuse few.
		mode = ModeIPv6
		cidrs = map[string][]string{"eni-0": {"2001:db8:0:1::/80"}, "eni-1": {"2001:db8:0:2::/80"}, "eni-2": {"2001:db8:0:3::/80"}}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var checked, restored, adopted int
	for life := range 8 {
		cp := &flakyWrites{LogCheckpointer: &LogCheckpointer{Path: memPath, fsys: m, CompactBytes: 3000, IdleFold: -1, Log: quiet}}
		s, err := New(Options{Mode: mode, CooldownPeriod: 10 * time.Second, Checkpointer: cp, Now: clock.now})
		if err != nil {
			t.Fatal(err)
		}
		// A restart may not know every CIDR yet (IMDS lag): what the
		// checkpoint holds there stays pending until the CIDR comes.
		missing := map[string]bool{}
		addENI := func(id string, dev int, skip bool) {
			if err := s.AddENI(ENI{ID: id, DeviceNumber: dev, IsPrimary: dev == 0}); err != nil {
				t.Fatal(err)
			}
			for i, c := range cidrs[id] {
				if skip && i == 0 {
					missing[c] = true
					continue
				}
				if err := s.AddCIDR(id, pfx(c)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := range 3 {
			addENI(fmt.Sprint("eni-", i), i, life > 0 && i > 0 && r.IntN(2) == 0)
		}
		var before File
		if life > 0 {
			before, err = cp.Read()
			if err != nil {
				t.Fatalf("life %d: read: %v", life, err)
			}
			res, err := s.Load(nil)
			if err != nil {
				t.Fatalf("life %d: load: %v", life, err)
			}
			restored += len(res.Restored) + len(res.Unknown)
			if want, have := len(before.Allocations), len(res.Restored)+len(res.Unknown); want != have {
				t.Fatalf("life %d: %d allocations restored, the checkpoint has %d", life, have, want)
			}
		}
		check := func(when string) {
			t.Helper()
			cp.setFail(false)
			if err := s.Persist(); err != nil {
				t.Fatalf("life %d, %s: persist: %v", life, when, err)
			}
			cp.mu.Lock()
			cp.LogCheckpointer.mu.Lock()
			cp.LogCheckpointer.waitFold() // a read runs at start-up, never beside a fold
			cp.LogCheckpointer.mu.Unlock()
			got, err := readCheckpoint(m, memPath)
			cp.mu.Unlock()
			if err != nil {
				t.Fatalf("life %d, %s: read: %v", life, when, err)
			}
			if want, have := entriesOf(liveFile(s)), entriesOf(got); !slices.Equal(want, have) {
				t.Fatalf("life %d, %s: the checkpoint lacks %v and has extra %v", life, when, minus(want, have), minus(have, want))
			}
			checked++
		}
		check("after restore")
		for round := range 40 {
			// Racing clients, each on its own keys, so that many changes
			// share a batch (group commit).
			var wg sync.WaitGroup
			for g := range 4 {
				gr := rand.New(rand.NewPCG(seed, uint64(life*1000+round*10+g)))
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 6 {
						k := podKey(g*100 + gr.IntN(25))
						if gr.IntN(2) == 0 {
							_, _ = s.Assign(k, podMeta(g*100+round))
						} else {
							_, _ = s.Unassign(k)
						}
					}
				}()
			}
			cp.setFail(r.IntN(8) == 0)
			switch op := r.IntN(10); {
			case op < 3:
				// the clock only moves while no client runs
			case op < 5:
				id := fmt.Sprint("eni-", 1+r.IntN(2))
				c := cidrs[id][len(cidrs[id])-1]
				if _, err := s.RemoveCIDR(id, pfx(c), true); err == nil {
					_ = s.AddCIDR(id, pfx(c))
				}
			case op < 7:
				for c := range missing {
					for id, cs := range cidrs {
						if cs[0] == c && s.AddCIDR(id, pfx(c)) == nil {
							adopted++
							delete(missing, c)
						}
					}
					break
				}
			case op < 8:
				if len(missing) > 0 {
					_, _ = s.DropPending(nil)
				}
			default:
				dev := 1 + r.IntN(2)
				id := fmt.Sprint("eni-", dev)
				if _, err := s.RemoveENI(id, true); err == nil {
					for _, c := range cidrs[id] {
						delete(missing, c)
					}
					addENI(id, dev, false)
				}
			}
			wg.Wait()
			clock.advance(time.Duration(r.IntN(4)) * time.Second)
			s.Stats() // cooldowns that ended leave the heap
			check(fmt.Sprint("round ", round))
		}
		if r.IntN(2) == 0 {
			// A downgrade: Close folds the log into the file, which
			// upstream's reader must find complete.
			if err := cp.Close(); err != nil {
				t.Fatalf("life %d: close: %v", life, err)
			}
			data, err := m.ReadFile(memPath)
			if err != nil {
				t.Fatal(err)
			}
			up, err := upstreamRead(data)
			if err != nil {
				t.Fatalf("life %d: upstream's reader: %v", life, err)
			}
			want := map[Key]netip.Addr{}
			for _, a := range liveFile(s).Allocations {
				want[a.Key] = a.Addr
			}
			if len(up) != len(want) {
				t.Fatalf("life %d: upstream's reader finds %d allocations, want %d", life, len(up), len(want))
			}
			for k, a := range want {
				if up[k] != a {
					t.Fatalf("life %d: upstream's reader finds %s at %v, want %s", life, k, up[k], a)
				}
			}
		}
		if life%3 == 2 {
			m = m.crashed() // the next life starts from what a crash leaves
		}
	}
	if checked < 300 || restored < 20 || (!v6 && adopted == 0) {
		t.Fatalf("%d checks, %d allocations restored, %d CIDRs adopted: too few to tell", checked, restored, adopted)
	}
	t.Logf("%d checks, %d allocations restored, %d CIDRs adopted", checked, restored, adopted)
}
