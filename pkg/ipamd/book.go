package ipamd

import (
	"maps"
	"net/netip"
	"sync"
	"time"
)

// eniBook is what ipamd remembers of EC2 beyond the datastores, for the
// pool manager and the reconcile: CIDRs it just released (the reconcile
// ignores them for a grace period: instance metadata still lists them),
// each managed ENI's primary address and attachment (freeing needs no
// describe), attached ENIs it never manages (EFA-only, unmanaged cards)
// and ENIs still without delete-on-termination. mu guards every field.
type eniBook struct {
	mu         sync.Mutex
	released   map[netip.Prefix]time.Time
	primaryIPs map[string]netip.Addr // ENI id → its primary address (for host teardown)
	attachIDs  map[string]string     // ENI id → attachment id
	ignored    map[string]bool
	dotPending map[string]string // ENI id → attachment id still without delete-on-termination
}

func newENIBook() *eniBook {
	return &eniBook{released: map[netip.Prefix]time.Time{}, primaryIPs: map[string]netip.Addr{},
		attachIDs: map[string]string{}, ignored: map[string]bool{}, dotPending: map[string]string{}}
}

// noteReleased starts the grace period of CIDRs given back to EC2.
func (b *eniBook) noteReleased(at time.Time, ps ...netip.Prefix) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range ps {
		b.released[p] = at
	}
}

// inGrace reports whether p was released less than the grace period ago.
func (b *eniBook) inGrace(p netip.Prefix) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.released[p]
	return ok
}

// forgetReleased drops grace entries older than grace.
func (b *eniBook) forgetReleased(now time.Time, grace time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for p, t := range b.released {
		if now.Sub(t) >= grace {
			delete(b.released, p)
		}
	}
}

// remember records a managed ENI's primary address and attachment.
func (b *eniBook) remember(id string, primary netip.Addr, attachID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.primaryIPs[id] = primary
	b.attachIDs[id] = attachID
}

func (b *eniBook) primaryIP(id string) (netip.Addr, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ip, ok := b.primaryIPs[id]
	return ip, ok
}

func (b *eniBook) attachID(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.attachIDs[id]
}

// forget drops a freed ENI.
func (b *eniBook) forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.primaryIPs, id)
	delete(b.attachIDs, id)
}

// forgetPrimaryIP drops an ENI's primary address once its host state is gone.
func (b *eniBook) forgetPrimaryIP(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.primaryIPs, id)
}

func (b *eniBook) ignore(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ignored[id] = true
}

func (b *eniBook) isIgnored(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ignored[id]
}

// awaitDeleteOnTermination records an ENI whose delete-on-termination is
// still to be set.
func (b *eniBook) awaitDeleteOnTermination(id, att string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dotPending[id] = att
}

func (b *eniBook) deleteOnTerminationDone(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.dotPending, id)
}

// pendingDeleteOnTermination is a copy of ENI id → attachment id.
func (b *eniBook) pendingDeleteOnTermination() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.dotPending)
}
