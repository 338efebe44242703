package egress

import "testing"

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
