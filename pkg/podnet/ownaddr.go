package podnet

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
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
		link, err := markedVeth(h, name, mark)
		if err != nil {
			return nil, err
		}
		if link == nil {
			continue
		}
		addrs, err := singleHostRoutesVia(h, link, hostcontract.MainTable)
		if err != nil {
			return nil, err
		}
		for _, addr := range addrs {
			table, err := fromPodTable(h, addr)
			if err != nil {
				return nil, err
			}
			out = append(out, Interface{Index: i, HostVeth: name, Address: addr, RouteTable: table})
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
