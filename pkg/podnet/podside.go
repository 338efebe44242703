package podnet

import (
	"fmt"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// podSide is a netlink socket opened in a pod's namespace and the pod end
// of a veth pair found through it. A netlink socket stays in the namespace
// it was opened in, so the pod side is configured from the node's thread:
// one namespace switch to open it instead of a goroutine on a thread of
// its own for the whole configuration, and one socket for every request.
type podSide struct {
	h    *netlink.Handle
	link netlink.Link
}

// openPodSide opens the socket in podNS and brings the pod end
// containerIf up: up needs neither the pod's address nor its family, so
// CreateVeth does it while ipamd answers.
func openPodSide(podNS ns.NetNS, containerIf string) (*podSide, error) {
	h, err := netlink.NewHandleAt(netns.NsHandle(podNS.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket in pod netns: %w", err)
	}
	link, err := h.LinkByName(containerIf)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("find %s in pod netns: %w", containerIf, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		h.Close()
		return nil, fmt.Errorf("set %s up in pod netns: %w", containerIf, err)
	}
	return &podSide{h: h, link: link}, nil
}

// openHost opens a netlink socket in the calling thread's namespace for
// one command's node-side requests, instead of a socket per request as
// the package-level netlink functions do. If it cannot, requests open
// their own sockets as before.
func openHost() *netlink.Handle {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return &netlink.Handle{}
	}
	return h
}

func (p *podSide) close() {
	if p != nil {
		p.h.Close()
	}
}
