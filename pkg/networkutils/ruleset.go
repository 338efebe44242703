package networkutils

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"golang.org/x/sys/unix"
)

// ruleSpec is the comparable subset of an ip rule this package reads and
// writes. It is the unit of the ip-rule part of the desired host state.
type ruleSpec struct {
	Family   int // netlink.FAMILY_V4 or FAMILY_V6
	Priority int
	Src, Dst netip.Prefix
	Mark     uint32
	Mask     uint32
	IPProto  int
	IifName  string
	OifName  string
	Invert   bool
	Table    int
}

func ruleKeyOf(r netlink.Rule) ruleSpec {
	k := ruleSpec{
		Family: r.Family, Priority: r.Priority, Src: ipNetToPrefix(r.Src), Dst: ipNetToPrefix(r.Dst),
		Mark: r.Mark, IPProto: r.IPProto, IifName: r.IifName, OifName: r.OifName, Invert: r.Invert, Table: r.Table,
	}
	if r.Mask != nil {
		k.Mask = *r.Mask
	} else if r.Mark != 0 {
		k.Mask = 0xffffffff // the kernel's implicit mask
	}
	if k.Family == 0 {
		if k.Src.Addr().Is6() || k.Dst.Addr().Is6() {
			k.Family = netlink.FAMILY_V6
		} else {
			k.Family = netlink.FAMILY_V4
		}
	}
	return k
}

func (r ruleSpec) netlinkRule() *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = r.Family
	nr.Priority = r.Priority
	nr.Table = r.Table
	if r.Src.IsValid() {
		nr.Src = prefixToIPNet(r.Src)
	}
	if r.Dst.IsValid() {
		nr.Dst = prefixToIPNet(r.Dst)
	}
	if r.Mark != 0 {
		nr.Mark = r.Mark
		m := r.Mask
		nr.Mask = &m
	}
	nr.IPProto = r.IPProto
	nr.IifName = r.IifName
	nr.OifName = r.OifName
	nr.Invert = r.Invert
	if !r.Src.IsValid() && !r.Dst.IsValid() {
		// The kernel refuses (EEXIST) a rule without source and
		// destination if one with a source or destination and the same
		// other fields exists: it compares absent selectors as wildcards,
		// the protocol exactly. Our protocol keeps such a rule of ours
		// (`lookup main` for AWS_EXTERNAL_SERVICE_CIDRS=0.0.0.0/0, the
		// fwmark rule) from being shut out by a narrower one.
		nr.Protocol = unix.RTPROT_BOOT
	}
	return nr
}

// String renders r like `ip rule` does, prefixed by its family.
func (r ruleSpec) String() string {
	fam := "ipv4"
	if r.Family == netlink.FAMILY_V6 {
		fam = "ipv6"
	}
	s := fmt.Sprintf("%s %d:", fam, r.Priority)
	if r.Invert {
		s += " not"
	}
	if r.Src.IsValid() {
		s += " from " + r.Src.String()
	} else {
		s += " from all"
	}
	if r.Dst.IsValid() {
		s += " to " + r.Dst.String()
	}
	if r.Mark != 0 {
		s += fmt.Sprintf(" fwmark %#x/%#x", r.Mark, r.Mask)
	}
	if r.IPProto != 0 {
		s += fmt.Sprintf(" ipproto %d", r.IPProto)
	}
	if r.IifName != "" {
		s += " iif " + r.IifName
	}
	if r.OifName != "" {
		s += " oif " + r.OifName
	}
	switch r.Table {
	case hostcontract.MainTable:
		s += " lookup main"
	case localTable:
		s += " lookup local"
	default:
		s += fmt.Sprintf(" lookup %d", r.Table)
	}
	return s
}

const localTable = 255
