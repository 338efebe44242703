package datastore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// stageCheckpointer stages every File; each staged sync blocks until the
// test sends its result on the channel of that stage (in stage order).
type stageCheckpointer struct {
	gateCheckpointer

	mu      sync.Mutex
	results []chan error // one per stage
	running int          // staged syncs waiting for their result
	most    int          // the most that ever ran at once
}

func (c *stageCheckpointer) Stage(File) (func() error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := make(chan error, 1)
	c.results = append(c.results, res)
	return func() error {
		c.mu.Lock()
		c.running++
		c.most = max(c.most, c.running)
		c.mu.Unlock()
		err := <-res
		c.mu.Lock()
		c.running--
		c.mu.Unlock()
		return err
	}, true
}

// waitRunning waits until n staged syncs run and returns their result
// channels, first staged first.
func (c *stageCheckpointer) waitRunning(t *testing.T, n int) []chan error {
	t.Helper()
	var out []chan error
	err := testutil.Eventually(context.Background(), 10*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.running != n {
			return fmt.Errorf("%d staged syncs run, want %d", c.running, n)
		}
		out = append([]chan error(nil), c.results[len(c.results)-n:]...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A change that arrives while a staged sync runs stages and syncs at once
// (two syncs run together, no more), but batches finish in order: when
// the first sync fails, the second batch fails too although its own sync
// succeeded first (its record follows one that may be lost), and both
// assignments are undone. The next change is written on its own.
func TestStagedSyncsOverlapAndFinishInOrder(t *testing.T) {
	cp := &stageCheckpointer{}
	s, err := New(Options{Mode: ModePrefixIPv4, CooldownPeriod: time.Minute, Checkpointer: cp, Now: newClock().now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddENI(ENI{ID: "eni-0", IsPrimary: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCIDR("eni-0", pfx("10.0.0.0/28")); err != nil {
		t.Fatal(err)
	}
	done := make(chan assignResult, 3)
	assign := func(i int) {
		a, err := s.Assign(podKey(i), podMeta(i))
		done <- assignResult{i, a, err}
	}
	go assign(0)
	first := cp.waitRunning(t, 1)[0]
	go assign(1)
	second := cp.waitRunning(t, 2)[1]
	go assign(2) // no third sync: it waits for a batch to finish
	waitAssigned(t, s, 3)

	second <- nil
	cp.waitRunning(t, 1)
	first <- errors.New("disk gone")
	for range 2 {
		r := <-done
		if r.i == 2 || !errors.Is(r.err, ErrCheckpoint) {
			t.Fatalf("Assign %d: %v (got %s); want pods 0 and 1 to fail with ErrCheckpoint", r.i, r.err, r.a.Addr)
		}
	}
	third := cp.waitRunning(t, 1)[0]
	third <- nil
	if r := <-done; r.i != 2 || r.err != nil {
		t.Fatalf("Assign %d: %v, want pod 2 written", r.i, r.err)
	}
	got := s.AllocatedIPs()
	if len(got) != 1 || got[0].Key != podKey(2) {
		t.Fatalf("the store holds %v, want only pod 2", got)
	}
	if cp.most != 2 {
		t.Fatalf("at most %d staged syncs ran at once, want 2", cp.most)
	}
	checkInvariants(t, s)
}
