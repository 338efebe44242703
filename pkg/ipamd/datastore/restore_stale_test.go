package datastore

import (
	"errors"
	"testing"
	"time"
)

// TestRestoreCoolsAStalePodsAddress: a pod deleted while ipamd was down
// (its DEL reported done without ipamd, which then found its host veth
// gone) is stale at the restore. Its address cools for the cooldown like
// any released one: no new pod inherits the gone pod's conntrack and
// policy state. Before, the address was free at once and the next ADD
// got it.
func TestRestoreCoolsAStalePodsAddress(t *testing.T) {
	path := copyTestdata(t, "upstream-ipam.json")
	clock := newClock()
	s := newFileStore(t, path, ModeSecondaryIPv4, clock)
	upstreamNode(t, s)
	res, err := s.Load(func(a Allocation) bool { return a.Meta.K8sPodName != "web-1" })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stale) != 1 || res.Stale[0].Addr != ip("10.0.1.23") {
		t.Fatalf("stale: %+v", res.Stale)
	}
	checkInvariants(t, s)
	if st := s.Stats(); st.CoolingIPs != 1 || st.AvailableIPs != 1 {
		t.Errorf("after the restore: %+v, want the stale pod's address cooling and only 10.0.1.41 available", st)
	}
	var got []string
	for i := range 2 {
		a, err := s.Assign(podKey(i), Metadata{})
		if errors.Is(err, ErrNoAvailableAddress) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.Addr.String())
	}
	if len(got) != 1 || got[0] != "10.0.1.41" {
		t.Errorf("new pods within the cooldown got %v, want only 10.0.1.41", got)
	}
	clock.advance(30 * time.Second)
	if a, err := s.Assign(podKey(9), Metadata{}); err != nil || a.Addr != ip("10.0.1.23") {
		t.Errorf("after the cooldown: %+v, %v; want 10.0.1.23", a, err)
	}
	checkInvariants(t, s)
}
