package podnet

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
	"golang.org/x/sys/unix"
)

// markedVeth is the host veth name when it exists, is a veth and carries
// mark (SandboxMark); nil otherwise. A name without a pod veth's shape is
// no pod's and is not looked for. An unmarked veth (upstream's plugin, or
// an older one of ours) proves nothing.
func markedVeth(h *netlink.Handle, name, mark string) (netlink.Link, error) {
	if !isPodVethName(name) {
		return nil, nil
	}
	link, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find host veth %s: %w", name, err)
	}
	if _, ok := link.(*netlink.Veth); !ok || link.Attrs().Alias != mark {
		return nil, nil
	}
	return link, nil
}

// singleHostRoutesVia is the destinations of table's single-host routes
// through link, IPv4 then IPv6.
func singleHostRoutesVia(h *netlink.Handle, link netlink.Link, table int) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		routes, err := nldump.Retry(func() ([]netlink.Route, error) {
			return h.RouteListFiltered(fam, &netlink.Route{Table: table, LinkIndex: link.Attrs().Index},
				netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
		})
		if err != nil {
			return nil, fmt.Errorf("list routes through %s in table %s: %w", link.Attrs().Name, tableName(table), err)
		}
		for _, r := range routes {
			if r.Dst == nil {
				continue
			}
			if ones, bits := r.Dst.Mask.Size(); ones != bits {
				continue
			}
			out = append(out, r.Dst)
		}
	}
	return out, nil
}
