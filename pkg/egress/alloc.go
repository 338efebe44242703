package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrExhausted is returned when every address of the egress range is held.
var ErrExhausted = errors.New("egress range exhausted")

// Range is the allocatable part of the egress subnet. Defaults follow
// host-local: gateway = first address, allocation from the first address
// after the network address (the gateway is skipped) to the last one, less
// the IPv4 broadcast address.
type Range struct {
	Subnet     netip.Prefix
	Start, End netip.Addr
	Gateway    netip.Addr
}

// NewRange parses a host-local range; empty strings take the defaults.
func NewRange(subnet, start, end, gateway string) (Range, error) {
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return Range{}, fmt.Errorf("subnet %q: %w", subnet, err)
	}
	if p != p.Masked() {
		return Range{}, fmt.Errorf("subnet %s has host bits set", subnet)
	}
	if p.Addr().BitLen()-p.Bits() < 2 {
		return Range{}, fmt.Errorf("subnet %s is too small to allocate from", subnet)
	}
	r := Range{Subnet: p, Start: p.Addr().Next(), Gateway: p.Addr().Next(), End: lastAddr(p)}
	if p.Addr().Is4() {
		r.End = r.End.Prev()
	}
	for _, f := range []struct {
		s   string
		dst *netip.Addr
		n   string
	}{{start, &r.Start, "rangeStart"}, {end, &r.End, "rangeEnd"}, {gateway, &r.Gateway, "gateway"}} {
		if f.s == "" {
			continue
		}
		a, err := netip.ParseAddr(f.s)
		if err != nil || !p.Contains(a) {
			return Range{}, fmt.Errorf("%s %q is not an address in %s", f.n, f.s, subnet)
		}
		*f.dst = a
	}
	if r.End.Less(r.Start) {
		return Range{}, fmt.Errorf("range %s-%s is empty", r.Start, r.End)
	}
	return r, nil
}

func (r Range) String() string { return fmt.Sprintf("%s-%s", r.Start, r.End) }

// Contains reports whether a is allocatable in r.
func (r Range) Contains(a netip.Addr) bool {
	return !a.Less(r.Start) && !r.End.Less(a) && a != r.Gateway
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Store holds one egress address per (container, interface) on disk, in
// host-local's format: under <dataDir>/<network>, one file per address
// named after it and holding "<containerID>\r\n<ifname>", the round-robin
// cursor in last_reserved_ip.0, and a flock on the file "lock". So
// allocations survive restarts, and a node upgraded from upstream, whose
// plugin delegated to host-local with the same dataDir and network name,
// keeps its pods' addresses.
type Store struct {
	dir   string
	rng   Range
	lockf *os.File
}

const (
	lineBreak    = "\r\n"
	lastReserved = "last_reserved_ip.0"
)

// Lease is an allocated address with its range's gateway.
type Lease struct {
	Addr netip.Prefix // the address with the subnet's length
	GW   netip.Addr
}

// OpenStore opens (creating if needed) the store of network under dataDir.
func OpenStore(network, dataDir string, rng Range) (*Store, error) {
	dir := filepath.Join(dataDir, network)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("egress address store: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("egress address store lock: %w", err)
	}
	return &Store{dir: dir, rng: rng, lockf: f}, nil
}

// StoreExists reports whether the store of network under dataDir exists;
// DEL and GC of a disabled plugin use it so as not to create one.
func StoreExists(network, dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, network))
	return err == nil
}

// Close releases the store's lock file.
func (s *Store) Close() error { return s.lockf.Close() }

// locked runs f holding the store's exclusive lock (other plugin runs wait).
func (s *Store) locked(f func() error) error {
	for {
		err := unix.Flock(int(s.lockf.Fd()), unix.LOCK_EX)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("lock egress address store %s: %w", s.dir, err)
		}
	}
	defer unix.Flock(int(s.lockf.Fd()), unix.LOCK_UN) //nolint:errcheck // closing the file unlocks too
	return f()
}

// Acquire returns the address (id, ifname) holds, allocating the next free
// one after the last allocated (round robin, as host-local) if it holds
// none: a repeated ADD gets the same address back. A new allocation skips
// the addresses in taken (another network's pods'; see RoutedAddrs).
func (s *Store) Acquire(id, ifname string, taken map[netip.Addr]bool) (Lease, error) {
	var l Lease
	err := s.locked(func() error {
		held, err := s.list()
		if err != nil {
			return err
		}
		used := make(map[netip.Addr]bool, len(held))
		orphans := map[netip.Addr]bool{}
		for _, h := range held {
			if h.ContainerID == id && h.IfName == ifname && s.rng.Contains(h.IP) {
				l = s.lease(h.IP)
				return nil
			}
			// Owners are written under this lock, so an empty file is
			// the leftover of a run killed between create and write: no
			// DEL will ever name its owner.
			if h.ContainerID == "" {
				orphans[h.IP] = true
				continue
			}
			used[h.IP] = true
		}
		cur := s.rng.End
		if b, err := os.ReadFile(filepath.Join(s.dir, lastReserved)); err == nil {
			if a, err := netip.ParseAddr(strings.TrimSpace(string(b))); err == nil && s.rng.Contains(a) {
				cur = a
			}
		}
		for a := s.next(cur); ; a = s.next(a) {
			if s.rng.Contains(a) && !used[a] && !taken[a] {
				if orphans[a] {
					if err := os.Remove(filepath.Join(s.dir, a.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
						return fmt.Errorf("reclaim empty reservation %s: %w", a, err)
					}
				}
				if err := s.reserve(a, id, ifname); err != nil {
					return err
				}
				l = s.lease(a)
				return nil
			}
			if a == cur {
				return fmt.Errorf("%w: every address of %s (%s) is held, in store %s or routed on the node to another network's pod", ErrExhausted, s.rng.Subnet, s.rng, s.dir)
			}
		}
	})
	return l, err
}

func (s *Store) next(a netip.Addr) netip.Addr {
	if a == s.rng.End {
		return s.rng.Start
	}
	return a.Next()
}

func (s *Store) lease(a netip.Addr) Lease {
	return Lease{Addr: netip.PrefixFrom(a, s.rng.Subnet.Bits()), GW: s.rng.Gateway}
}

func (s *Store) reserve(a netip.Addr, id, ifname string) error {
	p := filepath.Join(s.dir, a.String())
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("reserve %s: %w", a, err)
	}
	_, werr := f.WriteString(strings.TrimSpace(id) + lineBreak + ifname)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(p) // best effort: an empty reservation file would leak the address
		return fmt.Errorf("reserve %s: %w", a, werr)
	}
	if err := os.WriteFile(filepath.Join(s.dir, lastReserved), []byte(a.String()), 0o600); err != nil {
		return fmt.Errorf("record last reserved address: %w", err)
	}
	return nil
}

// Held returns the address (id, ifname) holds in this range, if any.
func (s *Store) Held(id, ifname string) (Lease, bool, error) {
	var l Lease
	var ok bool
	err := s.locked(func() error {
		held, err := s.list()
		for _, h := range held {
			if h.ContainerID == id && h.IfName == ifname && s.rng.Contains(h.IP) {
				l, ok = s.lease(h.IP), true
			}
		}
		return err
	})
	return l, ok, err
}

// Owned returns the addresses Release(id, ifname) would free, and whether
// the container holds addresses under another interface name: then a DEL
// of (id, ifname) holding none is a stray one (a wrong CNI_IFNAME) and
// must leave the container's SNAT chain, which is per container, alone.
func (s *Store) Owned(id, ifname string) (held []netip.Addr, elsewhere bool, err error) {
	err = s.locked(func() error {
		hs, err := s.list()
		for _, h := range hs {
			switch {
			case h.ContainerID != id:
			case h.IfName == ifname || h.IfName == "":
				held = append(held, h.IP)
			default:
				elsewhere = true
			}
		}
		return err
	})
	return held, elsewhere, err
}

// Release frees whatever (id, ifname) holds (in any range); holding
// nothing is not an error. Files of host-local versions that recorded only
// the container ID match the ID alone.
func (s *Store) Release(id, ifname string) error {
	return s.locked(func() error {
		held, err := s.list()
		if err != nil {
			return err
		}
		var errs []error
		for _, h := range held {
			if h.ContainerID == id && (h.IfName == ifname || h.IfName == "") {
				if err := os.Remove(filepath.Join(s.dir, h.IP.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("release %s: %w", h.IP, err))
				}
			}
		}
		return errors.Join(errs...)
	})
}

// Holder is one allocation found in the store.
type Holder struct {
	IP          netip.Addr
	ContainerID string
	IfName      string
}

// List returns every allocation in the store.
func (s *Store) List() ([]Holder, error) {
	var out []Holder
	err := s.locked(func() error {
		var err error
		out, err = s.list()
		return err
	})
	return out, err
}

func (s *Store) list() ([]Holder, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list egress address store: %w", err)
	}
	var out []Holder
	for _, e := range entries {
		ip, err := netip.ParseAddr(e.Name())
		if e.IsDir() || err != nil {
			continue // lock and last_reserved_ip.N
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read egress allocation %s: %w", e.Name(), err)
		}
		id, ifname, _ := strings.Cut(strings.TrimSpace(string(b)), lineBreak)
		out = append(out, Holder{IP: ip, ContainerID: strings.TrimSpace(id), IfName: strings.TrimSpace(ifname)})
	}
	return out, nil
}
