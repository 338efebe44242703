package datastore

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Accepted prefix lengths. EC2 hands out /32 secondary IPv4 addresses, /28
// IPv4 prefixes, /80 IPv6 prefixes and /128 IPv6 addresses; the bounds keep
// address arithmetic within 64 bits and CIDR sizes within int.
const (
	minIPv4Bits = 24
	minIPv6Bits = 80
)

// validateCIDR rejects prefixes the store cannot hold, naming the input.
func validateCIDR(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("%w %q", ErrInvalidCIDR, p.String())
	case p.Addr().Is4In6() || p.Addr().Zone() != "":
		return fmt.Errorf("%w %s: mapped or zoned address", ErrInvalidCIDR, p)
	case p != p.Masked():
		return fmt.Errorf("%w %s: host bits set (want %s)", ErrInvalidCIDR, p, p.Masked())
	case p.Addr().Is4() && p.Bits() < minIPv4Bits:
		return fmt.Errorf("%w %s: IPv4 CIDRs must be /%d or longer", ErrInvalidCIDR, p, minIPv4Bits)
	case p.Addr().Is6() && p.Bits() < minIPv6Bits:
		return fmt.Errorf("%w %s: IPv6 CIDRs must be /%d or longer", ErrInvalidCIDR, p, minIPv6Bits)
	}
	return nil
}

func cidrSize(p netip.Prefix) uint64 { return 1 << (p.Addr().BitLen() - p.Bits()) }

// addrAt returns the address at offset off of p (off < cidrSize(p)).
func addrAt(p netip.Prefix, off uint64) netip.Addr {
	if p.Addr().Is4() {
		b := p.Addr().As4()
		v := binary.BigEndian.Uint32(b[:]) + uint32(off)
		binary.BigEndian.PutUint32(b[:], v)
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	// Host bits of an accepted IPv6 CIDR lie in the low 64 bits.
	lo := binary.BigEndian.Uint64(b[8:]) + off
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// offsetOf returns the offset of a in p; a must be inside p.
func offsetOf(p netip.Prefix, a netip.Addr) uint64 {
	if a.Is4() {
		x, y := p.Addr().As4(), a.As4()
		return uint64(binary.BigEndian.Uint32(y[:]) - binary.BigEndian.Uint32(x[:]))
	}
	x, y := p.Addr().As16(), a.As16()
	return binary.BigEndian.Uint64(y[8:]) - binary.BigEndian.Uint64(x[8:])
}

// slot is one address that is assigned or cooling; cidr == nil marks a
// pending restored entry whose CIDR is not known yet.
type slot struct {
	cidr     *cidr
	off      uint64
	addr     netip.Addr
	allocIdx int // index into Store.allocs, -1 when not assigned
	coolIdx  int // index into Store.cool, -1 when not cooling
	// lastAssigned is when the address was last handed out, kept in
	// memory only so /v1/enis shows it for a cooling address as upstream
	// does; zero for addresses restored cooling from a checkpoint.
	lastAssigned time.Time
	// batch is the not yet finished write that makes this assignment
	// durable; nil once a write holding it succeeded.
	batch *batch
}

// cidr is one CIDR of an ENI with its free-address structure: every offset
// at or above next that is not in used is free, and every free offset below
// next is in free (possibly with stale duplicates, skipped lazily), so the
// lowest free address is found in O(log n) without scanning.
type cidr struct {
	prefix   netip.Prefix
	class    Mode
	eni      *eni
	size     uint64
	assigned int
	cooling  int
	next     uint64
	free     offHeap
	used     map[uint64]*slot
	heapIdx  int // position in eni.cand[class], -1 when absent
}

func newCIDR(p netip.Prefix, e *eni) *cidr {
	return &cidr{prefix: p, class: ClassOf(p), eni: e, size: cidrSize(p), used: map[uint64]*slot{}, heapIdx: -1}
}

func (c *cidr) available() int { return int(c.size) - c.assigned - c.cooling }

func (c *cidr) empty() bool { return c.assigned == 0 && c.cooling == 0 }

// takeLowest removes the lowest free offset from the free structure.
func (c *cidr) takeLowest() (uint64, bool) {
	for len(c.free) > 0 {
		if c.used[c.free[0]] == nil {
			return c.free.pop(), true
		}
		c.free.pop() // stale duplicate of an offset claimed since
	}
	for c.next < c.size && c.used[c.next] != nil {
		c.next++
	}
	if c.next >= c.size {
		return 0, false
	}
	c.next++
	return c.next - 1, true
}

// release returns a no-longer-used offset to the free structure.
func (c *cidr) release(off uint64) {
	delete(c.used, off)
	if off < c.next {
		c.free.push(off)
	}
}
