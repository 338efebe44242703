package ipamd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// failingGate fails its first checkpoint write once the test opens gate.
type failingGate struct {
	gate   chan struct{}
	failed bool
}

func (g *failingGate) Write(datastore.File) error {
	if g.failed {
		return nil
	}
	<-g.gate
	g.failed = true
	return errors.New("disk full")
}

func (g *failingGate) Read() (datastore.File, error) {
	return datastore.File{}, fmt.Errorf("gate: %w", fs.ErrNotExist)
}

// TestRetriedAddWaitsForTheFirstWrite: an ADD repeated while the first
// ADD's checkpoint write is in flight (the runtime timed the first one
// out and retried) gets the key's address only once that write has
// finished, and fails with it. Before, the retry answered at once with an
// address the failed write then took back: the pod was wired with an
// address the datastore would hand to another pod.
func TestRetriedAddWaitsForTheFirstWrite(t *testing.T) {
	cp := &failingGate{gate: make(chan struct{})}
	s, err := datastore.New(datastore.Options{Mode: datastore.ModeSecondaryIPv4, Checkpointer: cp})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddENI(datastore.ENI{ID: "eni-0", IsPrimary: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCIDR("eni-0", netip.MustParsePrefix("10.0.0.10/32")); err != nil {
		t.Fatal(err)
	}
	cards := &cardSet{}
	list := []*poolManager{{index: 0, store: s}}
	cards.list.Store(&list)
	h := &handout{cards: cards}

	k := datastore.Key{NetworkName: "aws-cni", ContainerID: "sandbox-a", IfName: "eth0"}
	meta := datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "web-1", InterfacesCount: 1}
	type outcome struct {
		asgs []datastore.Assignment
		err  error
	}
	first, retry := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		a, err := h.assign(k, meta, false)
		first <- outcome{a, err}
	}()
	// The first ADD holds the address and waits for its write.
	if err := testutil.Eventually(context.Background(), 10*time.Second, func() error {
		if s.Stats().AssignedIPs != 1 {
			return errors.New("first ADD not assigned yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	go func() {
		a, err := h.assign(k, meta, false)
		retry <- outcome{a, err}
	}()
	// The retry either answers (before the write's outcome is known) or
	// waits for the first ADD's write: only then may the write fail.
	if err := testutil.Eventually(context.Background(), 10*time.Second, func() error {
		if len(retry) > 0 || waitsForWrite("(*handout).assign") {
			return nil
		}
		return errors.New("the retried ADD neither answered nor waits for the write")
	}); err != nil {
		t.Fatal(err)
	}
	close(cp.gate)
	if r := <-first; r.err == nil {
		t.Fatalf("the first ADD succeeded (%v) though its write failed", r.asgs)
	}
	r := <-retry
	if r.err != nil {
		return // failed with the write: the runtime retries
	}
	held, ok := s.Lookup(k)
	if !ok || held.Addr != r.asgs[0].Addr {
		t.Fatalf("the retried ADD got %s, but the datastore holds %v for the pod (found %v): the address is free for another pod",
			r.asgs[0].Addr, held.Addr, ok)
	}
}

// waitsForWrite reports whether two goroutines running caller wait for a
// checkpoint write (datastore's await): the first ADD and its retry.
func waitsForWrite(caller string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, caller) && strings.Contains(g, "(*Store).await") {
			n++
		}
	}
	return n >= 2
}
