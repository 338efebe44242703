package podnet

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
	"golang.org/x/sys/unix"
)

// ErrNoBranchAddress says the node shows no address of a branch-ENI pod
// for a sandbox (see OwnBranchAddress).
var ErrNoBranchAddress = errors.New("no host veth marked as the sandbox's routes a branch address")

// OwnBranchAddress finds, for a DEL whose prevResult names a branch-ENI
// pod's VLAN id but not its address, the address and the host veth the
// pod's ADD wired: the first of vethNames that exists, is marked as
// sandbox's (SandboxMark) and routes exactly one single-host address,
// in the branch's table (strict mode) or in main (standard mode). An
// unmarked veth (upstream's plugin, or an older one of ours) proves
// nothing and is skipped. It reads only; TeardownBranch checks again
// under the pod lock what it removes.
func OwnBranchAddress(sandbox string, vlanID int, vethNames []string) (hostVeth string, addr *net.IPNet, err error) {
	mark := SandboxMark(sandbox)
	if mark == "" {
		return "", nil, ErrNoBranchAddress
	}
	if err := CheckVLANID(vlanID); err != nil {
		return "", nil, err
	}
	h := openHost()
	defer h.Close()
	for _, name := range vethNames {
		if !isPodVethName(name) {
			continue
		}
		link, err := h.LinkByName(name)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("find host veth %s: %w", name, err)
		}
		if _, ok := link.(*netlink.Veth); !ok || link.Attrs().Alias != mark {
			continue
		}
		var found []*net.IPNet
		for _, table := range []int{BranchTable(vlanID), hostcontract.MainTable} {
			for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
				routes, err := nldump.Retry(func() ([]netlink.Route, error) {
					return h.RouteListFiltered(fam, &netlink.Route{Table: table, LinkIndex: link.Attrs().Index},
						netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
				})
				if err != nil {
					return "", nil, fmt.Errorf("list routes through %s in table %d: %w", name, table, err)
				}
				for _, r := range routes {
					if r.Dst == nil {
						continue
					}
					if ones, bits := r.Dst.Mask.Size(); ones != bits {
						continue
					}
					if !slices.ContainsFunc(found, func(a *net.IPNet) bool { return a.String() == r.Dst.String() }) {
						found = append(found, r.Dst)
					}
				}
			}
		}
		if len(found) == 1 {
			return name, found[0], nil
		}
	}
	return "", nil, ErrNoBranchAddress
}
