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
// link-netns id, or a kernel that does not answer by one, see
// peerOfAnswer).
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
	peer, err := peerOfAnswer(msgs, a.ParentIndex, a.Index, a.NetNsID)
	if err != nil {
		return "", fmt.Errorf("peer of %s: %w", a.Name, err)
	}
	return peer, nil
}

// peerOfAnswer is the name in an RTM_GETLINK answer for the pod end's
// index peerIndex, in the namespace of id nsid, of the veth whose node end
// has index hostIndex. Kernels before 4.15 ignore IFLA_TARGET_NETNSID and
// answer with the node's own link of that index (such as eth1, or another
// pod's host veth); kernels that honour it echo it in the answer. The
// answer names the pod end only if it echoes nsid and is a veth whose
// IFLA_LINK is the node end: a node's veth (a container node's eth0) may
// point at an index equal to the node end's by coincidence. Anything else
// is errNoPeer.
func peerOfAnswer(msgs [][]byte, peerIndex, hostIndex, nsid int) (string, error) {
	for _, m := range msgs {
		info := nl.DeserializeIfInfomsg(m)
		if int(info.Index) != peerIndex {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[info.Len():])
		if err != nil {
			return "", err
		}
		var name, kind string
		link, target := -1, -1
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFLA_TARGET_NETNSID:
				if len(at.Value) == 4 {
					target = int(int32(nl.NativeEndian().Uint32(at.Value)))
				}
			case unix.IFLA_IFNAME:
				name = string(bytes.TrimRight(at.Value, "\x00"))
			case unix.IFLA_LINK:
				if len(at.Value) == 4 {
					link = int(nl.NativeEndian().Uint32(at.Value))
				}
			case unix.IFLA_LINKINFO:
				kind = linkKind(at.Value)
			}
		}
		if name == "" || kind != "veth" || link != hostIndex || target != nsid {
			return "", errNoPeer
		}
		return name, nil
	}
	return "", errNoPeer
}

// linkKind is IFLA_INFO_KIND of an IFLA_LINKINFO attribute's value.
func linkKind(linkInfo []byte) string {
	infos, err := nl.ParseRouteAttr(linkInfo)
	if err != nil {
		return ""
	}
	for _, in := range infos {
		if in.Attr.Type == unix.IFLA_INFO_KIND {
			return string(bytes.TrimRight(in.Value, "\x00"))
		}
	}
	return ""
}
