package podnet

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
	"golang.org/x/sys/unix"
)

// OwnInterfaces returns the node side of sandbox's regular pod as the node
// shows it, for a DEL that has neither prevResult nor ipamd's answer (an
// ADD killed before it printed its result, then ipamd down): each host
// veth of vethNames (interface i is vethNames[i]) that carries sandbox's
// mark (SandboxMark), with every address main routes through it and, as
// RouteTable, the table of that address's from-pod rule (main when there
// is none). The mark proves the veth, and so what is routed through it,
// is that sandbox's.
func OwnInterfaces(sandbox string, vethNames []string) ([]Interface, error) {
	mark := SandboxMark(sandbox)
	if mark == "" {
		return nil, nil
	}
	h := openHost()
	defer h.Close()
	var out []Interface
	for i, name := range vethNames {
		if !isPodVethName(name) {
			continue
		}
		link, err := h.LinkByName(name)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("find host veth %s: %w", name, err)
		}
		if _, ok := link.(*netlink.Veth); !ok || link.Attrs().Alias != mark {
			continue
		}
		for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
			routes, err := nldump.Retry(func() ([]netlink.Route, error) {
				return h.RouteListFiltered(fam, &netlink.Route{Table: hostcontract.MainTable, LinkIndex: link.Attrs().Index},
					netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
			})
			if err != nil {
				return nil, fmt.Errorf("list routes through %s: %w", name, err)
			}
			for _, r := range routes {
				if r.Dst == nil {
					continue
				}
				if ones, bits := r.Dst.Mask.Size(); ones != bits {
					continue
				}
				table, err := fromPodTable(h, r.Dst)
				if err != nil {
					return nil, err
				}
				out = append(out, Interface{Index: i, HostVeth: name, Address: r.Dst, RouteTable: table})
			}
		}
	}
	return out, nil
}

// fromPodTable is the table of pod's from-pod rule, main when it has none.
func fromPodTable(h *netlink.Handle, pod *net.IPNet) (int, error) {
	rules, err := nldump.Retry(func() ([]netlink.Rule, error) {
		return h.RuleListFiltered(family(pod), &netlink.Rule{Src: pod, Priority: hostcontract.PriorityFromPod},
			netlink.RT_FILTER_SRC|netlink.RT_FILTER_PRIORITY)
	})
	if err != nil {
		return 0, fmt.Errorf("list rules from %s: %w", pod, err)
	}
	for _, r := range rules {
		if r.Src != nil && r.Src.String() == pod.String() {
			return r.Table, nil
		}
	}
	return hostcontract.MainTable, nil
}
