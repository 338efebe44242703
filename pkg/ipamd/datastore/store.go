package datastore

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Defaults ipamd uses when its configuration says nothing.
const (
	DefaultCooldownPeriod = 30 * time.Second // IP_COOLDOWN_PERIOD
)

// Options configure a Store.
type Options struct {
	// Mode is the initial active mode (SetMode switches it).
	Mode Mode
	// CooldownPeriod is IP_COOLDOWN_PERIOD: how long a released address is
	// not handed out again. Zero disables cooldown; ipamd passes its config
	// value (default DefaultCooldownPeriod).
	CooldownPeriod time.Duration
	// Checkpointer persists allocations after every change; nil → none.
	Checkpointer Checkpointer
	// Now is the clock; nil → time.Now.
	Now func() time.Time
	// Others, when set, tells AddCIDR what the node's other stores (one
	// per network card) hold of the CIDR (othercards.go).
	Others func(p netip.Prefix) Foreign
}

// Store is the address pool of one network card. All methods are safe for
// concurrent use. mu guards every field below and everything they point
// to (ENIs, CIDRs, slots, batches): one owner, one lock. It suffices since
// every operation on the assign/unassign path is O(log n) and the
// checkpoint write runs with mu released (commit.go).
type Store struct {
	mu       sync.Mutex
	now      func() time.Time
	cooldown time.Duration
	cp       Checkpointer
	mode     Mode
	others   func(netip.Prefix) Foreign

	enis  map[string]*eni
	cidrs map[netip.Prefix]*cidr
	lens  map[lenKey]int // CIDRs per (family, length), for overlap checks

	cand     [numModes]iheap[*eni] // per mode: usable ENIs with an available address
	sums     [numModes]modeCounts  // per mode, over non-excluded ENIs
	excluded int

	byKey      map[Key]*slot
	allocs     []Allocation // live allocations, the checkpoint's content
	allocSlots []*slot
	cool       []Cooling // min-heap by UnassignedAt
	coolSlots  []*slot
	// fileExtra: the restored checkpoint's top-level members this
	// version does not know (unknown.go), in every File written.
	fileExtra string
	// pending holds restored entries whose address is in no known CIDR:
	// allocations, and cooling addresses (cooling ones also sit in cool).
	pending     map[netip.Addr]*slot
	pendingCool int
	// readopted: pending allocations AddCIDR placed since the last
	// Readopted (quarantine.go).
	readopted []*slot
	// reserved: slots of this store's CIDRs kept from new pods for
	// another store's pending allocation (othercards.go), by address.
	reserved map[netip.Addr]reservation
	// unpersisted: the last checkpoint write failed, so the file may lag
	// memory (a kept Unassign, RemoveENI, RemoveCIDR or DropPending) until
	// the next successful write.
	unpersisted bool

	// Group commit (commit.go): open collects the changes no write has
	// taken yet; writing is set while a writer, holding no lock, writes
	// its copy (snapAllocs, snapCool).
	open       *batch
	nop        bool // cp is NopCheckpointer: no batch is ever written
	writing    bool
	snapAllocs []Allocation
	snapCool   []Cooling
	// changed is the positions of allocs and cool changed since the last
	// snapshot, snapChanges the writer's (changes.go).
	changed     changeSet
	snapChanges fileChanges
}

type lenKey struct {
	v6   bool
	bits int
}

type modeCounts struct {
	total, assigned, cooling, cidrs, freeCIDRs int
}

func (m modeCounts) available() int { return m.total - m.assigned - m.cooling }

type eni struct {
	info     ENI
	cidrs    map[netip.Prefix]*cidr
	counts   [numModes]modeCounts
	assigned int
	cooling  int
	cand     [numModes]iheap[*cidr] // CIDRs with an available address
	heapIdx  [numModes]int          // position in Store.cand, -1 when absent
}

// New returns an empty Store.
func New(o Options) (*Store, error) {
	if !o.Mode.valid() {
		return nil, fmt.Errorf("%w: mode %d", ErrInvalidArgument, o.Mode)
	}
	if o.CooldownPeriod < 0 {
		return nil, fmt.Errorf("%w: negative cooldown period %s", ErrInvalidArgument, o.CooldownPeriod)
	}
	s := &Store{
		now:      o.Now,
		cooldown: o.CooldownPeriod,
		cp:       o.Checkpointer,
		mode:     o.Mode,
		others:   o.Others,
		enis:     map[string]*eni{},
		cidrs:    map[netip.Prefix]*cidr{},
		lens:     map[lenKey]int{},
		byKey:    map[Key]*slot{},
		pending:  map[netip.Addr]*slot{},
		reserved: map[netip.Addr]reservation{},
	}
	s.open = s.newBatch()
	if s.now == nil {
		s.now = time.Now
	}
	if s.cp == nil {
		s.cp = NopCheckpointer{}
	}
	_, s.nop = s.cp.(NopCheckpointer)
	for m := range s.cand {
		s.cand[m] = iheap[*eni]{
			less: eniLess,
			setIdx: func(e *eni, i int) {
				e.heapIdx[m] = i
			},
		}
	}
	return s, nil
}

// Dense packing: the ENI with the most assigned addresses first, then the
// lowest device number; within it the CIDR with the most assigned, then the
// lowest address; within that the lowest free address.
func eniLess(a, b *eni) bool {
	if a.assigned != b.assigned {
		return a.assigned > b.assigned
	}
	if a.info.DeviceNumber != b.info.DeviceNumber {
		return a.info.DeviceNumber < b.info.DeviceNumber
	}
	return a.info.ID < b.info.ID
}

func cidrLess(a, b *cidr) bool {
	if a.assigned != b.assigned {
		return a.assigned > b.assigned
	}
	return a.prefix.Addr().Less(b.prefix.Addr())
}

// Mode returns the active mode.
func (s *Store) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// SetMode switches the active mode (prefix delegation toggle). CIDRs of
// other classes stay, keep their pods, but hand out nothing.
func (s *Store) SetMode(m Mode) error {
	if !m.valid() {
		return fmt.Errorf("%w: mode %d", ErrInvalidArgument, m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = m
	return nil
}

// AddENI adds an ENI without CIDRs.
func (s *Store) AddENI(info ENI) error {
	if info.ID == "" {
		return fmt.Errorf("%w: ENI without ID", ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.enis[info.ID]; ok {
		return fmt.Errorf("%w: %s", ErrDuplicateENI, info.ID)
	}
	if info.CreatedAt.IsZero() {
		info.CreatedAt = s.now()
	}
	e := &eni{info: info, cidrs: map[netip.Prefix]*cidr{}, heapIdx: [numModes]int{-1, -1, -1}}
	for m := range e.cand {
		e.cand[m] = iheap[*cidr]{less: cidrLess, setIdx: func(c *cidr, i int) { c.heapIdx = i }}
	}
	s.enis[info.ID] = e
	if info.ExcludedForPods {
		s.excluded++
	}
	return nil
}

// RemoveENI removes an ENI and its CIDRs. An ENI with assigned addresses is
// refused unless force; with force the evicted assignments are returned
// (the caller tears their pods' networking down) and the checkpoint is
// rewritten. Evictions are sorted by address. A checkpoint error is
// returned with the evictions: the ENI is gone either way, since removal
// mirrors EC2.
func (s *Store) RemoveENI(id string, force bool) ([]Assignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	e, ok := s.enis[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownENI, id)
	}
	if e.assigned > 0 && !force {
		return nil, fmt.Errorf("%w: %s holds %d assigned addresses", ErrENIInUse, id, e.assigned)
	}
	var evicted []Assignment
	changed := false
	for _, c := range e.cidrs {
		ev, ch := s.dropCIDR(c)
		evicted = append(evicted, ev...)
		changed = changed || ch
	}
	if e.info.ExcludedForPods {
		s.excluded--
	}
	delete(s.enis, id)
	sortAssignments(evicted)
	if changed {
		if err := s.await(s.open); err != nil {
			return evicted, fmt.Errorf("remove ENI %s: %w", id, err)
		}
	}
	return evicted, nil
}

// SetExcluded marks an ENI excluded (or not) for pod addresses.
func (s *Store) SetExcluded(id string, excluded bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.enis[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownENI, id)
	}
	if e.info.ExcludedForPods == excluded {
		return nil
	}
	sign := 1
	if excluded {
		sign = -1
		s.excluded++
	} else {
		s.excluded--
	}
	for m := range e.counts {
		s.sums[m].add(e.counts[m], sign)
	}
	e.info.ExcludedForPods = excluded
	for m := range Mode(numModes) {
		s.placeENI(e, m)
	}
	return nil
}

func (m *modeCounts) add(o modeCounts, sign int) {
	m.total += sign * o.total
	m.assigned += sign * o.assigned
	m.cooling += sign * o.cooling
	m.cidrs += sign * o.cidrs
	m.freeCIDRs += sign * o.freeCIDRs
}

// AddCIDR adds a CIDR (secondary /32, prefix, IPv6) to an ENI. A CIDR that
// equals or overlaps one anywhere in the store, or in another card's
// (Options.Others), is refused. Pending allocations inside it are
// adopted, those other cards hold included.
func (s *Store) AddCIDR(eniID string, p netip.Prefix) error {
	if err := validateCIDR(p); err != nil {
		return err
	}
	var f Foreign
	if s.others != nil {
		// Asked before taking mu: the other stores take their own locks.
		f = s.others(p)
	}
	if f.Overlap.IsValid() {
		return fmt.Errorf("add CIDR %s to %s: %w (%s on another network card)", p, eniID, ErrDuplicateCIDR, f.Overlap)
	}
	taken, cool, err := s.addCIDR(eniID, p, f)
	if err != nil || f.Forget == nil || len(taken)+len(cool) == 0 {
		return err
	}
	var errs []error
	for _, a := range f.Forget(taken, cool) {
		// Its DEL (or re-ADD) was answered on the other card: no one
		// releases this copy again.
		if _, err := s.UnassignAddr(a.Key, a.Addr); err != nil && !errors.Is(err, ErrUnknownPod) {
			errs = append(errs, fmt.Errorf("add CIDR %s to %s: releasing %s taken over after its release: %w", p, eniID, a.Key, err))
		}
	}
	return errors.Join(errs...)
}

// addCIDR is AddCIDR under mu, taking over f's entries; it returns those
// taken once they are written (none when the write failed: they stay on
// their card as well).
func (s *Store) addCIDR(eniID string, p netip.Prefix, f Foreign) ([]Allocation, []Cooling, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.enis[eniID]
	if !ok {
		return nil, nil, fmt.Errorf("add CIDR %s: %w: %s", p, ErrUnknownENI, eniID)
	}
	if o := s.overlapping(p); o != nil {
		return nil, nil, fmt.Errorf("add CIDR %s to %s: %w (%s on %s)", p, eniID, ErrDuplicateCIDR, o.prefix, o.eni.info.ID)
	}
	if a, held, ok := s.untakeable(f); ok {
		return nil, nil, fmt.Errorf("add CIDR %s to %s: %w (%s quarantined on another network card for %s, which holds %s on this one)",
			p, eniID, ErrDuplicateCIDR, a.Addr, a.Key, held)
	}
	taken, cool := s.takeOver(f)
	c := newCIDR(p, e)
	e.cidrs[p] = c
	s.cidrs[p] = c
	s.lens[lenKey{p.Addr().Is6(), p.Bits()}]++
	delta := modeCounts{total: int(c.size), cidrs: 1, freeCIDRs: 1}
	e.counts[c.class].add(delta, 1)
	if !e.info.ExcludedForPods {
		s.sums[c.class].add(delta, 1)
	}
	s.placeCIDR(c)
	s.placeENI(e, c.class)
	s.adoptPending(c)
	if len(taken)+len(cool) > 0 {
		if err := s.await(s.open); err != nil {
			return nil, nil, nil // the CIDR stands; the next write persists them
		}
	}
	return taken, cool, nil
}

// RemoveCIDR removes a CIDR from an ENI. Assigned addresses refuse the
// removal unless force; force evicts and returns them and rewrites the
// checkpoint (a checkpoint error is returned with the evictions). Cooling
// addresses do not block: the pool planner is where cooldown is honoured.
func (s *Store) RemoveCIDR(eniID string, p netip.Prefix, force bool) ([]Assignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	c, ok := s.cidrs[p]
	if !ok || c.eni.info.ID != eniID {
		return nil, fmt.Errorf("%w: %s on %s", ErrUnknownCIDR, p, eniID)
	}
	if c.assigned > 0 && !force {
		return nil, fmt.Errorf("%w: %s on %s has %d assigned addresses", ErrCIDRInUse, p, eniID, c.assigned)
	}
	evicted, changed := s.dropCIDR(c)
	sortAssignments(evicted)
	if changed {
		if err := s.await(s.open); err != nil {
			return evicted, fmt.Errorf("remove CIDR %s from %s: %w", p, eniID, err)
		}
	}
	return evicted, nil
}

// dropCIDR evicts everything in c and removes it. changed reports whether
// the checkpoint content changed. An evicted allocation is not forgotten:
// its pod, which has had no DEL, still holds the address, so it is kept
// pending (quarantined, see quarantine) until that DEL or until its pod
// is known gone; should EC2 hand the address to the node again, AddCIDR
// gives it back to that pod and to no other.
func (s *Store) dropCIDR(c *cidr) (evicted []Assignment, changed bool) {
	for _, sl := range c.used {
		switch {
		case sl.allocIdx >= 0:
			evicted = append(evicted, s.assignmentOf(sl))
			s.quarantine(sl)
			s.adjust(c, -1, 0)
		case sl.coolIdx >= 0:
			s.coolRemove(sl.coolIdx)
			s.adjust(c, 0, -1)
			changed = true
		default: // reserved for another store's pending allocation
			delete(s.reserved, sl.addr)
			s.adjust(c, -1, 0)
		}
	}
	e := c.eni
	if c.heapIdx >= 0 {
		e.cand[c.class].remove(c.heapIdx)
	}
	delta := modeCounts{total: int(c.size), cidrs: 1, freeCIDRs: 1}
	e.counts[c.class].add(delta, -1)
	if !e.info.ExcludedForPods {
		s.sums[c.class].add(delta, -1)
	}
	delete(e.cidrs, c.prefix)
	delete(s.cidrs, c.prefix)
	k := lenKey{c.prefix.Addr().Is6(), c.prefix.Bits()}
	if s.lens[k]--; s.lens[k] == 0 {
		delete(s.lens, k)
	}
	s.placeENI(e, c.class)
	return evicted, changed
}

func sortAssignments(a []Assignment) {
	slices.SortFunc(a, func(x, y Assignment) int { return x.Addr.Compare(y.Addr) })
}

// overlapping returns a CIDR of the store that overlaps p, or nil.
func (s *Store) overlapping(p netip.Prefix) *cidr {
	for k := range s.lens {
		if k.v6 != p.Addr().Is6() {
			continue
		}
		if k.bits <= p.Bits() {
			if c := s.cidrs[netip.PrefixFrom(p.Addr(), k.bits).Masked()]; c != nil {
				return c
			}
			continue
		}
		// Longer CIDRs inside p: enumerate when few, else scan (rare: a
		// short CIDR added while longer ones of the family exist).
		if n := k.bits - p.Bits(); n <= 8 {
			step := uint64(1) << (p.Addr().BitLen() - k.bits)
			for i := uint64(0); i < 1<<n; i++ {
				if c := s.cidrs[netip.PrefixFrom(addrAt(p, i*step), k.bits)]; c != nil {
					return c
				}
			}
			continue
		}
		for q, c := range s.cidrs {
			if q.Bits() == k.bits && q.Addr().Is6() == k.v6 && p.Contains(q.Addr()) {
				return c
			}
		}
	}
	return nil
}

// cidrOf returns the CIDR containing a, or nil.
func (s *Store) cidrOf(a netip.Addr) *cidr {
	for k := range s.lens {
		if k.v6 != a.Is6() {
			continue
		}
		if c := s.cidrs[netip.PrefixFrom(a, k.bits).Masked()]; c != nil {
			return c
		}
	}
	return nil
}

// adjust is the single place counters and candidate indexes change when a
// CIDR gains or loses assigned/cooling addresses.
func (s *Store) adjust(c *cidr, dAssigned, dCooling int) {
	wasFree := c.empty()
	c.assigned += dAssigned
	c.cooling += dCooling
	delta := modeCounts{assigned: dAssigned, cooling: dCooling, freeCIDRs: b2i(c.empty()) - b2i(wasFree)}
	e := c.eni
	e.counts[c.class].add(delta, 1)
	e.assigned += dAssigned
	e.cooling += dCooling
	if !e.info.ExcludedForPods {
		s.sums[c.class].add(delta, 1)
	}
	s.placeCIDR(c)
	if dAssigned != 0 {
		for m := range e.heapIdx {
			if e.heapIdx[m] >= 0 {
				s.cand[m].fix(e.heapIdx[m])
			}
		}
	}
	s.placeENI(e, c.class)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// placeCIDR keeps c in its ENI's candidate heap iff it has an available address.
func (s *Store) placeCIDR(c *cidr) {
	h := &c.eni.cand[c.class]
	switch want := c.available() > 0; {
	case want && c.heapIdx < 0:
		h.push(c)
	case !want && c.heapIdx >= 0:
		h.remove(c.heapIdx)
	case want:
		h.fix(c.heapIdx)
	}
}

// placeENI keeps e in the store's candidate heap of mode m iff it is usable
// and has a CIDR of that mode with an available address.
func (s *Store) placeENI(e *eni, m Mode) {
	want := !e.info.ExcludedForPods && e.cand[m].len() > 0
	switch {
	case want && e.heapIdx[m] < 0:
		s.cand[m].push(e)
	case !want && e.heapIdx[m] >= 0:
		s.cand[m].remove(e.heapIdx[m])
	}
}

// advance moves every address whose cooldown ended back to free.
func (s *Store) advance(now time.Time) {
	for len(s.cool) > 0 && !now.Before(s.cool[0].UnassignedAt.Add(s.cooldown)) {
		sl := s.coolSlots[0]
		s.coolRemove(0)
		if sl.cidr == nil {
			delete(s.pending, sl.addr)
			s.pendingCool--
			continue
		}
		sl.cidr.release(sl.off)
		s.adjust(sl.cidr, 0, -1)
	}
}
