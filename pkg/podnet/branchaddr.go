package podnet

import (
	"errors"
	"net"
	"slices"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
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
		link, err := markedVeth(h, name, mark)
		if err != nil {
			return "", nil, err
		}
		if link == nil {
			continue
		}
		var found []*net.IPNet
		for _, table := range []int{BranchTable(vlanID), hostcontract.MainTable} {
			addrs, err := singleHostRoutesVia(h, link, table)
			if err != nil {
				return "", nil, err
			}
			for _, a := range addrs {
				if !slices.ContainsFunc(found, func(f *net.IPNet) bool { return f.String() == a.String() }) {
					found = append(found, a)
				}
			}
		}
		if len(found) == 1 {
			return name, found[0], nil
		}
	}
	return "", nil, ErrNoBranchAddress
}
