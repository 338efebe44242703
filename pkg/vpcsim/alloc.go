package vpcsim

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
)

// v4Pool hands out the addresses of one IPv4 subnet: lowest free first, so
// tests are reproducible and /28 fragmentation arises from real usage. One bit
// per address; AWS's five reserved addresses are permanently taken.
type v4Pool struct {
	prefix netip.Prefix
	base   uint32
	size   int
	used   []uint64
	free   int
}

func newV4Pool(p netip.Prefix) *v4Pool {
	p = p.Masked()
	size := 1 << (32 - p.Bits())
	a := &v4Pool{prefix: p, base: v4u32(p.Addr()), size: size, used: make([]uint64, (size+63)/64), free: size}
	// network, VPC router, DNS, reserved for future use, broadcast
	for _, off := range []int{0, 1, 2, 3, size - 1} {
		if off >= 0 && off < size && !a.isSet(off) {
			a.set(off)
		}
	}
	return a
}

func v4u32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }
func u32v4(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func (a *v4Pool) isSet(off int) bool { return a.used[off/64]&(1<<(off%64)) != 0 }
func (a *v4Pool) set(off int)        { a.used[off/64] |= 1 << (off % 64); a.free-- }
func (a *v4Pool) clear(off int)      { a.used[off/64] &^= 1 << (off % 64); a.free++ }

func (a *v4Pool) offset(addr netip.Addr) (int, bool) {
	if !addr.Is4() || !a.prefix.Contains(addr) {
		return 0, false
	}
	return int(v4u32(addr) - a.base), true
}

// Free is the number of unused, unreserved addresses.
func (a *v4Pool) Free() int { return a.free }

// allocN takes the n lowest free addresses, or none if fewer than n are free.
func (a *v4Pool) allocN(n int) ([]netip.Addr, bool) {
	if n > a.free {
		return nil, false
	}
	out := make([]netip.Addr, 0, n)
	for w := 0; w < len(a.used) && len(out) < n; w++ {
		for a.used[w] != ^uint64(0) && len(out) < n {
			bit := bits.TrailingZeros64(^a.used[w])
			off := w*64 + bit
			if off >= a.size {
				break
			}
			a.set(off)
			out = append(out, u32v4(a.base+uint32(off)))
		}
	}
	return out, len(out) == n
}

// allocBlocks takes the n lowest fully free, 16-aligned blocks (/28), or none.
func (a *v4Pool) allocBlocks(n int) ([]netip.Prefix, bool) {
	if a.size < 16 {
		return nil, false
	}
	var offs []int
	for w := 0; w < len(a.used) && len(offs) < n; w++ {
		for q := 0; q < 4 && len(offs) < n; q++ {
			off := w*64 + q*16
			if off+16 > a.size {
				break
			}
			if (a.used[w]>>(16*q))&0xffff == 0 {
				offs = append(offs, off)
			}
		}
	}
	if len(offs) < n {
		return nil, false
	}
	out := make([]netip.Prefix, 0, n)
	for _, off := range offs {
		a.setBlock(off)
		out = append(out, netip.PrefixFrom(u32v4(a.base+uint32(off)), 28))
	}
	return out, true
}

func (a *v4Pool) setBlock(off int) {
	a.used[off/64] |= 0xffff << (off % 64)
	a.free -= 16
}

func (a *v4Pool) clearBlock(off int) {
	a.used[off/64] &^= 0xffff << (off % 64)
	a.free += 16
}

// take claims a specific address.
func (a *v4Pool) take(addr netip.Addr) error {
	off, ok := a.offset(addr)
	if !ok {
		return apiErr("InvalidParameterValue", "Address %s does not fall within the subnet's address range", addr)
	}
	if a.isSet(off) {
		if a.reserved(off) {
			return apiErr("InvalidParameterValue", "Address %s is reserved by AWS", addr)
		}
		return apiErr("InvalidIPAddress.InUse", "Address %s is in use.", addr)
	}
	a.set(off)
	return nil
}

// takeBlock claims a specific aligned /28.
func (a *v4Pool) takeBlock(p netip.Prefix) error {
	off, ok := a.offset(p.Addr())
	if !ok || p.Bits() != 28 || p.Masked() != p || off+16 > a.size {
		return apiErr("InvalidParameterValue", "Prefix %s is not an aligned /28 within the subnet's address range", p)
	}
	if (a.used[off/64]>>(off%64))&0xffff != 0 {
		return apiErr("InvalidIPAddress.InUse", "Prefix %s overlaps addresses in use.", p)
	}
	a.setBlock(off)
	return nil
}

func (a *v4Pool) reserved(off int) bool { return off <= 3 || off == a.size-1 }

func (a *v4Pool) release(addr netip.Addr) {
	if off, ok := a.offset(addr); ok && a.isSet(off) && !a.reserved(off) {
		a.clear(off)
	}
}

func (a *v4Pool) releaseBlock(p netip.Prefix) {
	if off, ok := a.offset(p.Addr()); ok && off+16 <= a.size {
		a.clearBlock(off)
	}
}

// v6Pool hands out IPv6 addresses and /80 prefixes of one /64 subnet.
// Addresses come from the first /80; prefixes from the others, so the two
// never overlap unless a caller asks for a specific one.
type v6Pool struct {
	prefix   netip.Prefix
	addrs    map[uint64]bool // low 64 bits
	prefixes map[uint16]bool // bits 48..63 of the interface id
	nextAddr uint64
}

func newV6Pool(p netip.Prefix) *v6Pool {
	return &v6Pool{prefix: p.Masked(), addrs: map[uint64]bool{}, prefixes: map[uint16]bool{}}
}

func (a *v6Pool) low(addr netip.Addr) (uint64, bool) {
	if !addr.Is6() || addr.Is4In6() || !a.prefix.Contains(addr) {
		return 0, false
	}
	b := addr.As16()
	return binary.BigEndian.Uint64(b[8:]), true
}

func (a *v6Pool) make(low uint64) netip.Addr {
	b := a.prefix.Addr().As16()
	binary.BigEndian.PutUint64(b[8:], low)
	return netip.AddrFrom16(b)
}

func (a *v6Pool) allocN(n int) ([]netip.Addr, bool) {
	out := make([]netip.Addr, 0, n)
	var lows []uint64
	// offsets 0..3 and the last address are reserved, as for IPv4
	for low := uint64(4); len(lows) < n && low < 1<<48; low++ {
		if !a.addrs[low] {
			lows = append(lows, low)
		}
	}
	if len(lows) < n {
		return nil, false
	}
	for _, l := range lows {
		a.addrs[l] = true
		out = append(out, a.make(l))
	}
	return out, true
}

func (a *v6Pool) allocBlocks(n int) ([]netip.Prefix, bool) {
	var idx []uint16
	for i := 1; i < 1<<16 && len(idx) < n; i++ {
		if !a.prefixes[uint16(i)] && !a.addrInBlock(uint16(i)) {
			idx = append(idx, uint16(i))
		}
	}
	if len(idx) < n {
		return nil, false
	}
	out := make([]netip.Prefix, 0, n)
	for _, i := range idx {
		a.prefixes[i] = true
		out = append(out, netip.PrefixFrom(a.make(uint64(i)<<48), 80))
	}
	return out, true
}

func (a *v6Pool) addrInBlock(i uint16) bool {
	for l := range a.addrs {
		if uint16(l>>48) == i {
			return true
		}
	}
	return false
}

func (a *v6Pool) take(addr netip.Addr) error {
	l, ok := a.low(addr)
	if !ok {
		return apiErr("InvalidParameterValue", "Address %s does not fall within the subnet's IPv6 range", addr)
	}
	if l < 4 || l == ^uint64(0) {
		return apiErr("InvalidParameterValue", "Address %s is reserved by AWS", addr)
	}
	if a.addrs[l] || a.prefixes[uint16(l>>48)] {
		return apiErr("InvalidIPAddress.InUse", "Address %s is in use.", addr)
	}
	a.addrs[l] = true
	return nil
}

func (a *v6Pool) takeBlock(p netip.Prefix) error {
	l, ok := a.low(p.Addr())
	if !ok || p.Bits() != 80 || p.Masked() != p {
		return apiErr("InvalidParameterValue", "Prefix %s is not an aligned /80 within the subnet's IPv6 range", p)
	}
	i := uint16(l >> 48)
	if i == 0 || a.prefixes[i] || a.addrInBlock(i) {
		return apiErr("InvalidIPAddress.InUse", "Prefix %s overlaps addresses in use.", p)
	}
	a.prefixes[i] = true
	return nil
}

func (a *v6Pool) release(addr netip.Addr) {
	if l, ok := a.low(addr); ok {
		delete(a.addrs, l)
	}
}

func (a *v6Pool) releaseBlock(p netip.Prefix) {
	if l, ok := a.low(p.Addr()); ok {
		delete(a.prefixes, uint16(l>>48))
	}
}

func (a *v6Pool) String() string { return fmt.Sprintf("v6pool(%s)", a.prefix) }
