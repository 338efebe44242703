package datastore

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// benchStore builds a pool of n addresses (secondary: ENIs of 64 /32s;
// prefix: ENIs of 16 /28s), fills half of it with pods and frees every
// fourth of those, so the pool is fragmented as after churn.
func benchStore(b *testing.B, mode Mode, n int, cooldown time.Duration, cp Checkpointer, now func() time.Time) *Store {
	b.Helper()
	s, err := New(Options{Mode: mode, CooldownPeriod: cooldown, Checkpointer: cp, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	perENI, step := 64, 1
	if mode == ModePrefixIPv4 {
		perENI, step = 256, 16
	}
	for i := 0; i < n; i += step {
		dev := i / perENI
		id := fmt.Sprintf("eni-%d", dev)
		if i%perENI == 0 {
			if err := s.AddENI(ENI{ID: id, DeviceNumber: dev, IsPrimary: dev == 0}); err != nil {
				b.Fatal(err)
			}
		}
		a := netip.AddrFrom4([4]byte{10, byte(dev), byte(i % perENI / 256), byte(i % perENI % 256)})
		if err := s.AddCIDR(id, netip.PrefixFrom(a, 32-bitsOf(step))); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < n/2; i++ {
		if _, err := s.Assign(podKey(i), podMeta(i)); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < n/2; i += 4 {
		if _, err := s.Unassign(podKey(i)); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func bitsOf(step int) int {
	if step == 16 {
		return 4
	}
	return 0
}

// BenchmarkAssignUnassign measures one ADD plus one DEL on the in-memory
// path (no-op checkpointer): the cost must not grow with the pool.
func BenchmarkAssignUnassign(b *testing.B) {
	for _, mode := range []Mode{ModeSecondaryIPv4, ModePrefixIPv4} {
		for _, n := range []int{16, 256, 4096} {
			for _, cool := range []bool{false, true} {
				name := fmt.Sprintf("%s/addrs=%d/cooldown=%v", mode, n, cool)
				b.Run(name, func(b *testing.B) {
					clock := newClock()
					cooldown := time.Duration(0)
					if cool {
						// Each iteration advances the clock by 1 ms; a 3 ms
						// cooldown keeps ~3 addresses cooling at any time.
						cooldown = 3 * time.Millisecond
					}
					s := benchStore(b, mode, n, cooldown, NopCheckpointer{}, clock.now)
					k, m := podKey(1<<20), podMeta(0)
					b.ReportAllocs()
					b.ResetTimer()
					for range b.N {
						if _, err := s.Assign(k, m); err != nil {
							b.Fatal(err)
						}
						if _, err := s.Unassign(k); err != nil {
							b.Fatal(err)
						}
						clock.advance(time.Millisecond)
					}
				})
			}
		}
	}
}

// BenchmarkAssignUnassignFile is the same with the real JSON checkpoint
// (two atomic file replacements with fsync per iteration). Its cost grows
// with the number of live allocations, which every write serialises.
func BenchmarkAssignUnassignFile(b *testing.B) {
	for _, n := range []int{16, 256, 4096} {
		b.Run(fmt.Sprintf("addrs=%d", n), func(b *testing.B) {
			clock := newClock()
			cp := NewFileCheckpointer(filepath.Join(b.TempDir(), "ipam.json"))
			s := benchStore(b, ModeSecondaryIPv4, n, 0, cp, clock.now)
			k, m := podKey(1<<20), podMeta(0)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := s.Assign(k, m); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Unassign(k); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingCheckpointer counts the writes that reach the file.
type countingCheckpointer struct {
	Checkpointer
	writes atomic.Int64
}

func (c *countingCheckpointer) Write(f File) error {
	c.writes.Add(1)
	return c.Checkpointer.Write(f)
}

// BenchmarkConcurrentAssignDurable measures ADD+DEL pairs from several
// concurrent clients against the real JSON checkpoint in a directory on
// disk, with 250 live pods: the shape of a busy node. Every call returns
// only once its change is durable; writes/op shows how many file
// replacements each pair costs.
func BenchmarkConcurrentAssignDurable(b *testing.B) {
	for _, clients := range []int{1, 3, 8} {
		b.Run(fmt.Sprintf("pods=250/clients=%d", clients), func(b *testing.B) {
			cp := &countingCheckpointer{Checkpointer: NewFileCheckpointer(filepath.Join(b.TempDir(), "ipam.json"))}
			s := benchStore(b, ModeSecondaryIPv4, 512, 0, cp, time.Now)
			for i := 256; s.Stats().AssignedIPs < 250; i++ {
				if _, err := s.Assign(podKey(i), podMeta(i)); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			before := cp.writes.Load()
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						k := podKey(1<<20 + int(i))
						if _, err := s.Assign(k, podMeta(0)); err != nil {
							b.Error(err)
							return
						}
						if _, err := s.Unassign(k); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(cp.writes.Load()-before)/float64(b.N), "writes/op")
		})
	}
}

// BenchmarkCheckpointOnDisk measures one ADD plus one DEL at 250 live pods
// with the checkpoint in the test's temporary directory: "replace" writes
// the whole file each time (FileCheckpointer), "log" appends a record to
// its log (LogCheckpointer, folded by size only).
func BenchmarkCheckpointOnDisk(b *testing.B) {
	cps := map[string]func(path string) Checkpointer{
		"replace": func(p string) Checkpointer { return NewFileCheckpointer(p) },
		"log": func(p string) Checkpointer {
			lc := NewLogCheckpointer(p)
			lc.IdleFold = -1
			b.Cleanup(func() { _ = lc.Close() })
			return lc
		},
	}
	for _, name := range []string{"replace", "log"} {
		b.Run(name, func(b *testing.B) {
			cp := cps[name](filepath.Join(b.TempDir(), "ipam.json"))
			s := benchStore(b, ModeSecondaryIPv4, 570, 0, cp, time.Now)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := podKey(100000 + i)
				if _, err := s.Assign(k, podMeta(i)); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Unassign(k); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConcurrentLogCommit is figure 21's shape inside the store: 250
// live pods, 3 clients each doing ADD then DEL, the LogCheckpointer in the
// test's temporary directory (TMPDIR: put it on the disk to measure). It
// reports the ADD latency percentiles, the figure's measure, and the
// checkpoint writes per ADD+DEL pair and the folds; with the log
// preallocated (as ipamd runs it), appended to, and preallocated and
// folded every 64 KiB (about 200 writes: what folds cost the writes
// beside them).
func BenchmarkConcurrentLogCommit(b *testing.B) {
	for _, name := range []string{"preallocated", "appended", "folding"} {
		b.Run(name, func(b *testing.B) {
			lc := NewLogCheckpointer(filepath.Join(b.TempDir(), "ipam.json"))
			switch name {
			case "appended":
				lc.prealloc = -1
			case "folding":
				lc.CompactBytes = 64 << 10
			}
			concurrentCommits(b, lc)
		})
	}
}

func concurrentCommits(b *testing.B, lc *LogCheckpointer) {
	const clients = 3
	lc.IdleFold = -1
	b.Cleanup(func() { _ = lc.Close() })
	cp := &countingCheckpointer{Checkpointer: lc}
	s := benchStore(b, ModeSecondaryIPv4, 1024, 0, cp, time.Now)
	for i := 1024; s.Stats().AssignedIPs < 250; i++ {
		if _, err := s.Assign(podKey(i), podMeta(i)); err != nil {
			b.Fatal(err)
		}
	}
	before := cp.writes.Load()
	testutil.ConcurrentLatency(b, clients, "add", func(_ int, i int64) (time.Duration, error) {
		k := podKey(1<<20 + int(i))
		start := time.Now()
		if _, err := s.Assign(k, podMeta(0)); err != nil {
			return 0, err
		}
		took := time.Since(start)
		_, err := s.Unassign(k)
		return took, err
	})
	b.ReportMetric(float64(cp.writes.Load()-before)/float64(b.N), "writes/op")
	b.ReportMetric(float64(lc.folds.Load()), "folds")
}
