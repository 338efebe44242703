package egress

import (
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// ErrPodIfTaken is returned when the pod's v4if0/v6if0 is another
// attachment's: two networks chaining egress-cni into one pod (multus).
// The pod has one such interface and one default route per family, so the
// second attachment fails, as upstream's does, instead of taking the first
// one's egress over (docs/compatibility.md, "IPv6 and egress-cni").
var ErrPodIfTaken = errors.New("the pod's egress interface belongs to another attachment")

// otherOwner returns the node end of the pod's egress link when it is
// another attachment's egress veth (an "egr" link other than ours), ""
// otherwise (ours, or one upstream's plugin made, which this attachment may
// replace or remove as before). It runs in the pod's namespace.
func otherOwner(link netlink.Link, hostNS ns.NetNS, ours string) (string, error) {
	veth, ok := link.(*netlink.Veth)
	if !ok {
		return "", nil
	}
	idx, err := netlink.VethPeerIndex(veth)
	if err != nil {
		return "", fmt.Errorf("peer of %s: %w", link.Attrs().Name, err)
	}
	var peer string
	err = hostNS.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByIndex(idx)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		if err != nil {
			return err
		}
		peer = l.Attrs().Name
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("node end of %s: %w", link.Attrs().Name, err)
	}
	if peer != ours && strings.HasPrefix(peer, "egr") {
		return peer, nil
	}
	return "", nil
}

// clearPodIf removes the pod's egress link unless another attachment owns
// it (ErrPodIfTaken when refuse, left alone otherwise). It runs in the
// pod's namespace.
func clearPodIf(f Family, hostNS ns.NetNS, ours string, refuse bool) error {
	name := f.PodIfName()
	l, err := linkIfExists(name)
	if err != nil || l == nil {
		return err
	}
	other, err := otherOwner(l, hostNS, ours)
	if err != nil {
		return err
	}
	if other != "" {
		if refuse {
			return fmt.Errorf("%w: %s (node end %s); one egress-cni attachment per pod and family", ErrPodIfTaken, name, other)
		}
		return nil
	}
	return delLink(l)
}
