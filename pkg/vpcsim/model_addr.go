package vpcsim

import (
	"net/netip"
	"slices"
)

func errNoFreeAddresses(sn *subnet) *APIError {
	return apiErr("InsufficientFreeAddressesInSubnet", "The specified subnet %s does not have enough free addresses to satisfy the request.", sn.id)
}

func errNoCidrBlocks(sn *subnet) *APIError {
	return apiErr("InsufficientCidrBlocks", "There are not enough free cidr blocks in the specified subnet %s to satisfy the request.", sn.id)
}

// limits returns the per-ENI limits that apply to e: its instance type's when
// attached, the generic ones otherwise.
func (w *world) limits(e *eni) (ipv4, ipv6 int, pd bool, typ string) {
	if e.att != nil {
		if in, ok := w.instances[e.att.instanceID]; ok {
			return in.typ.IPv4PerENI, in.typ.IPv6PerENI, in.typ.PrefixDelegation(), in.typ.Name
		}
	}
	return unattachedIPv4Limit, unattachedIPv6Limit, true, ""
}

// addIPv4 adds secondary addresses or /28 prefixes to e, by count or by value.
// On error everything it took is given back through tx by the caller.
func (w *world) addIPv4(e *eni, sn *subnet, count int, addrs []netip.Addr, pcount int, prefixes []netip.Prefix, tx *undo) error {
	limit, _, pd, typ := w.limits(e)
	want := count + len(addrs) + pcount + len(prefixes)
	if want == 0 {
		return nil
	}
	if (pcount > 0 || len(prefixes) > 0) && !pd {
		return apiErr("InvalidParameterValue", "Prefix delegation is not supported by instance type %s", typ)
	}
	if e.ipv4Count()+want > limit {
		return apiErr("PrivateIpAddressLimitExceeded", "Number of private addresses will exceed limit.")
	}
	got, gotP, err := reserve(sn.v4, sn, count, addrs, pcount, prefixes, tx, func() error {
		if sn.v4.Free() < 16*pcount {
			return errNoFreeAddresses(sn)
		}
		return errNoCidrBlocks(sn)
	})
	if err != nil {
		return err
	}
	e.secondary = append(e.secondary, addrs...)
	e.secondary = append(e.secondary, got...)
	e.prefixes = append(e.prefixes, prefixes...)
	e.prefixes = append(e.prefixes, gotP...)
	return nil
}

func (w *world) addIPv6(e *eni, sn *subnet, count int, addrs []netip.Addr, pcount int, prefixes []netip.Prefix, tx *undo) error {
	want := count + len(addrs) + pcount + len(prefixes)
	if want == 0 {
		return nil
	}
	if sn.v6 == nil {
		return apiErr("InvalidParameterValue", "Subnet %s has no IPv6 CIDR block", sn.id)
	}
	_, limit, _, _ := w.limits(e)
	if e.ipv6Count()+want > limit {
		return apiErr("InvalidParameterValue", "Number of IPv6 addresses on interface %s will exceed limit.", e.id)
	}
	got, gotP, err := reserve(sn.v6, sn, count, addrs, pcount, prefixes, tx, func() error { return errNoCidrBlocks(sn) })
	if err != nil {
		return err
	}
	e.ipv6 = append(e.ipv6, addrs...)
	e.ipv6 = append(e.ipv6, got...)
	e.ipv6Prefixes = append(e.ipv6Prefixes, prefixes...)
	e.ipv6Prefixes = append(e.ipv6Prefixes, gotP...)
	return nil
}

// addrPool is what v4Pool and v6Pool share: single addresses and aligned
// blocks (/28 prefixes for IPv4, /80 for IPv6).
type addrPool interface {
	take(netip.Addr) error
	release(netip.Addr)
	takeBlock(netip.Prefix) error
	releaseBlock(netip.Prefix)
	allocN(n int) ([]netip.Addr, bool)
	allocBlocks(n int) ([]netip.Prefix, bool)
}

// reserve takes the named addrs and prefixes from pool and allocates count
// more addresses and pcount more blocks, each undone by tx on failure.
// noBlocks is the error EC2 gives when pool has too few free blocks.
func reserve(pool addrPool, sn *subnet, count int, addrs []netip.Addr, pcount int, prefixes []netip.Prefix, tx *undo,
	noBlocks func() error) ([]netip.Addr, []netip.Prefix, error) {
	for _, a := range addrs {
		if err := pool.take(a); err != nil {
			return nil, nil, err
		}
		tx.add(func() { pool.release(a) })
	}
	for _, p := range prefixes {
		if err := pool.takeBlock(p); err != nil {
			return nil, nil, err
		}
		tx.add(func() { pool.releaseBlock(p) })
	}
	got, ok := pool.allocN(count)
	if !ok {
		return nil, nil, errNoFreeAddresses(sn)
	}
	tx.add(func() {
		for _, a := range got {
			pool.release(a)
		}
	})
	gotP, ok := pool.allocBlocks(pcount)
	if !ok {
		return nil, nil, noBlocks()
	}
	tx.add(func() {
		for _, p := range gotP {
			pool.releaseBlock(p)
		}
	})
	return got, gotP, nil
}

type assignReq struct {
	ENIID       string
	Count       int
	Addrs       []netip.Addr
	PrefixCount int
	Prefixes    []netip.Prefix
}

type assignResult struct {
	Addrs    []netip.Addr
	Prefixes []netip.Prefix
}

func (r assignReq) validate(countParam, prefixCountParam string) error {
	if r.Count < 0 || r.PrefixCount < 0 {
		return apiErr("InvalidParameterValue", "Counts must not be negative")
	}
	kinds := 0
	for _, n := range []int{r.Count, len(r.Addrs), r.PrefixCount, len(r.Prefixes)} {
		if n > 0 {
			kinds++
		}
	}
	if kinds == 0 {
		return apiErr("MissingParameter", "The request must contain either %s, an address list, %s or a prefix list", countParam, prefixCountParam)
	}
	if kinds > 1 {
		return apiErr("InvalidParameterCombination", "Only one of %s, an address list, %s or a prefix list can be specified", countParam, prefixCountParam)
	}
	return nil
}

func (w *world) assignPrivate(r assignReq) (assignResult, error) { return w.assign(r, false) }

func (w *world) assignIPv6(r assignReq) (assignResult, error) { return w.assign(r, true) }

// assign adds IPv4 (with v6, IPv6) addresses or prefixes to r's ENI, all
// or nothing, and announces the new ones.
func (w *world) assign(r assignReq, v6 bool) (assignResult, error) {
	countParam, prefixParam, add := "SecondaryPrivateIpAddressCount", "Ipv4PrefixCount", w.addIPv4
	if v6 {
		countParam, prefixParam, add = "Ipv6AddressCount", "Ipv6PrefixCount", w.addIPv6
	}
	if err := r.validate(countParam, prefixParam); err != nil {
		return assignResult{}, err
	}
	e, err := w.eni(r.ENIID)
	if err != nil {
		return assignResult{}, err
	}
	addrs, prefixes := &e.secondary, &e.prefixes
	if v6 {
		addrs, prefixes = &e.ipv6, &e.ipv6Prefixes
	}
	nA, nP := len(*addrs), len(*prefixes)
	tx := &undo{}
	if err := add(e, w.subnets[e.subnetID], r.Count, r.Addrs, r.PrefixCount, r.Prefixes, tx); err != nil {
		tx.run()
		return assignResult{}, err
	}
	res := assignResult{Addrs: slices.Clone((*addrs)[nA:]), Prefixes: slices.Clone((*prefixes)[nP:])}
	w.emitAssigned(e, res)
	return res, nil
}

func (w *world) emitAssigned(e *eni, res assignResult) {
	w.emit(AddressesAssigned{ENIID: e.id, InstanceID: e.instanceID(), Prefixes: hostPrefixes(res)})
}

func hostPrefixes(res assignResult) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range res.Addrs {
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return append(out, res.Prefixes...)
}

func (w *world) unassignPrivate(eniID string, addrs []netip.Addr, prefixes []netip.Prefix) error {
	e, err := w.eni(eniID)
	if err != nil {
		return err
	}
	if len(addrs) == 0 && len(prefixes) == 0 {
		return apiErr("MissingParameter", "The request must contain either PrivateIpAddress or Ipv4Prefix")
	}
	if len(addrs) > 0 && len(prefixes) > 0 {
		return apiErr("InvalidParameterCombination", "PrivateIpAddress and Ipv4Prefix cannot be specified together")
	}
	for _, a := range addrs {
		if a == e.primaryIP {
			return apiErr("InvalidParameterValue", "The primary private IP address %s of interface %s cannot be unassigned", a, e.id)
		}
	}
	_, err = w.unassignFrom(e, w.subnets[e.subnetID].v4, &e.secondary, &e.prefixes, addrs, prefixes)
	return err
}

func (w *world) unassignIPv6(eniID string, addrs []netip.Addr, prefixes []netip.Prefix) (assignResult, error) {
	e, err := w.eni(eniID)
	if err != nil {
		return assignResult{}, err
	}
	if len(addrs) == 0 && len(prefixes) == 0 {
		return assignResult{}, apiErr("MissingParameter", "The request must contain either Ipv6Addresses or Ipv6Prefix")
	}
	return w.unassignFrom(e, w.subnets[e.subnetID].v6, &e.ipv6, &e.ipv6Prefixes, addrs, prefixes)
}

// unassignFrom checks that addrs and prefixes are all in have and hasP
// (e's lists of one family), takes them out, gives them back to pool and
// announces them.
func (w *world) unassignFrom(e *eni, pool addrPool, have *[]netip.Addr, hasP *[]netip.Prefix, addrs []netip.Addr, prefixes []netip.Prefix) (assignResult, error) {
	for _, a := range addrs {
		if !slices.Contains(*have, a) {
			return assignResult{}, apiErr("InvalidParameterValue", "Some of the specified addresses are not assigned to interface %s", e.id)
		}
	}
	for _, p := range prefixes {
		if !slices.Contains(*hasP, p) {
			return assignResult{}, apiErr("InvalidParameterValue", "Some of the specified prefixes are not assigned to interface %s", e.id)
		}
	}
	var gone assignResult
	for _, a := range addrs {
		if i := slices.Index(*have, a); i >= 0 {
			*have = slices.Delete(*have, i, i+1)
			pool.release(a)
			gone.Addrs = append(gone.Addrs, a)
		}
	}
	for _, p := range prefixes {
		if i := slices.Index(*hasP, p); i >= 0 {
			*hasP = slices.Delete(*hasP, i, i+1)
			pool.releaseBlock(p)
			gone.Prefixes = append(gone.Prefixes, p)
		}
	}
	w.emit(AddressesUnassigned{ENIID: e.id, InstanceID: e.instanceID(), Prefixes: hostPrefixes(gone)})
	return gone, nil
}
