package podnet

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// HostVethTakenError: the host veth name of an interface is held by a
// veth whose pod end is named as another interface slot's (mNicIf<i>
// against the runtime's name): another pod's live interface, since
// upstream's names let interface i>0 of pod x and interface 0 of pod x.i
// hash alike (pkg/vethname.Twin). Setup refuses to delete it.
type HostVethTakenError struct {
	HostVeth string
	Index    int    // the interface of the pod being wired
	PeerName string // the pod end of the veth found
}

func (e *HostVethTakenError) Error() string {
	return fmt.Sprintf("host veth %s (for interface %d) is held by a veth whose pod end is %s: another pod's interface", e.HostVeth, e.Index, e.PeerName)
}

// multiNICIfPrefix starts the pod-side name of every interface i>0
// (pkg/vethname.ContainerIfName).
const multiNICIfPrefix = "mNicIf"

// otherSlot reports whether a pod end named peer belongs to another
// interface slot than ifc: the runtime's name for index 0 is never
// mNicIf<i>, and index i>0 is always mNicIf<i>. An earlier sandbox of the
// same pod left its veth under the same slot's name.
func otherSlot(peer string, ifc Interface) bool {
	if ifc.Index == 0 {
		return strings.HasPrefix(peer, multiNICIfPrefix)
	}
	return peer != ifc.ContainerIf
}

// errNoPeer: the veth's other end cannot be named from the node (no
// link-netns id, or a kernel that does not answer by one).
var errNoPeer = errors.New("peer not visible from the node")

// vethPeerName is the name of the other end of the node's veth link,
// asked by the link-netns id the node knows its namespace by: nothing has
// to be entered or found.
func vethPeerName(link netlink.Link) (string, error) {
	a := link.Attrs()
	if a.NetNsID < 0 || a.ParentIndex <= 0 {
		return "", errNoPeer
	}
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(a.ParentIndex)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_TARGET_NETNSID, nl.Uint32Attr(uint32(a.NetNsID))))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil {
		return "", fmt.Errorf("peer of %s: %w", a.Name, err)
	}
	for _, m := range msgs {
		info := nl.DeserializeIfInfomsg(m)
		if int(info.Index) != a.ParentIndex {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[info.Len():])
		if err != nil {
			return "", fmt.Errorf("peer of %s: %w", a.Name, err)
		}
		for _, at := range attrs {
			if at.Attr.Type == unix.IFLA_IFNAME {
				return string(bytes.TrimRight(at.Value, "\x00")), nil
			}
		}
	}
	return "", fmt.Errorf("peer of %s: %w", a.Name, errNoPeer)
}
