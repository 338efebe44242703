package networkutils

import (
	"errors"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
	"golang.org/x/sys/unix"
)

// dump runs a netlink dump, retrying an interrupted one.
func dump[T any](f func() (T, error)) (T, error) { return nldump.Retry(f) }

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// hostPrefix returns a as a /32 or /128 net.IPNet.
func hostPrefix(a netip.Addr) *net.IPNet {
	return prefixToIPNet(netip.PrefixFrom(a, a.BitLen()))
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ipNetToPrefix converts a kernel IPNet; nil or malformed yields the zero Prefix.
func ipNetToPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}
	}
	if bits == 32 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, ones)
}

func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}

func listRules(fam int) ([]netlink.Rule, error) {
	return dump(func() ([]netlink.Rule, error) { return netlink.RuleList(fam) })
}

// delRule deletes r, treating "already gone" as success.
func delRule(r *netlink.Rule) error {
	if err := netlink.RuleDel(r); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}
