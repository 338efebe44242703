package egress

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestClaimsLeaveAddInFlight: a GC's claim on a container fails while an
// ADD holds its in-flight lock and succeeds once the ADD is done; a
// second claim in the same GC (another chain of the slot) is kept.
func TestClaimsLeaveAddInFlight(t *testing.T) {
	dir := t.TempDir()
	chain := ChainName(V4, "aws-cni", "ctr-a")
	add, err := LockInFlight("aws-cni", dir, chain)
	if err != nil {
		t.Fatal(err)
	}
	gc := NewClaims("aws-cni", dir)
	if ok, err := gc.Claim(chain); ok || err != nil {
		t.Fatalf("claim during the ADD = %v, %v; want false", ok, err)
	}
	if err := add.Release(); err != nil {
		t.Fatal(err)
	}
	gc2 := NewClaims("aws-cni", dir)
	defer gc2.Release()
	for range 2 {
		if ok, err := gc2.Claim(chain); !ok || err != nil {
			t.Fatalf("claim after the ADD = %v, %v; want true", ok, err)
		}
	}
	if ok, err := NewClaims("aws-cni", dir).Claim(chain); ok || err != nil {
		t.Errorf("another run's claim while this GC holds it: %v, %v; want not taken", ok, err)
	}
}

// TestWaitInFlightIsBounded: a DEL's wait for its container's ADD gives
// up with ErrInFlight while the ADD holds the lock past the deadline, and
// takes the lock once the ADD is done.
func TestWaitInFlightIsBounded(t *testing.T) {
	dir := t.TempDir()
	chain := ChainName(V4, "aws-cni", "ctr-a")
	add, err := LockInFlight("aws-cni", dir, chain)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if l, err := WaitInFlight(ctx, "aws-cni", dir, chain); !errors.Is(err, ErrInFlight) {
		t.Fatalf("wait during the ADD = %v, %v; want ErrInFlight", l, err)
	}
	if err := add.Release(); err != nil {
		t.Fatal(err)
	}
	del, err := WaitInFlight(context.Background(), "aws-cni", dir, chain)
	if err != nil {
		t.Fatalf("wait after the ADD: %v", err)
	}
	defer del.Release()
	if ok, err := NewClaims("aws-cni", dir).Claim(chain); ok || err != nil {
		t.Errorf("a GC's claim while the DEL holds the lock: %v, %v; want not taken", ok, err)
	}
}
