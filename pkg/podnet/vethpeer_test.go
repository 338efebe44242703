package podnet

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// linkAnswer is an RTM_NEWLINK answer's payload for link index named
// name, of kind (none when ""), whose IFLA_LINK is link (none when < 0),
// echoing IFLA_TARGET_NETNSID nsid (none when < 0), as kernels that honour
// it do.
func linkAnswer(index int, name, kind string, link, nsid int) []byte {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	b := msg.Serialize()
	b = append(b, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)).Serialize()...)
	if nsid >= 0 {
		b = append(b, nl.NewRtAttr(unix.IFLA_TARGET_NETNSID, nl.Uint32Attr(uint32(nsid))).Serialize()...)
	}
	if link >= 0 {
		b = append(b, nl.NewRtAttr(unix.IFLA_LINK, nl.Uint32Attr(uint32(link))).Serialize()...)
	}
	if kind != "" {
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(unix.IFLA_INFO_KIND, nl.NonZeroTerminated(kind))
		b = append(b, info.Serialize()...)
	}
	return b
}

// TestPeerOfAnswer: a kernel before 4.15 ignores IFLA_TARGET_NETNSID and
// answers the twin check's RTM_GETLINK with the node's own link of the
// pod end's index. Only a veth pointing back at the node end names the
// pod end; whatever else answers proves nothing (errNoPeer), so an
// earlier sandbox's veth is replaced rather than refused as another
// pod's.
func TestPeerOfAnswer(t *testing.T) {
	const hostIndex, peerIndex, nsid = 41, 3, 2
	for _, tc := range []struct {
		name   string
		answer []byte
		want   string
	}{
		{"pod end", linkAnswer(peerIndex, "mNicIf1", "veth", hostIndex, nsid), "mNicIf1"},
		{"node's device of that index", linkAnswer(peerIndex, "eth1", "", -1, -1), ""},
		{"node's other veth of that index", linkAnswer(peerIndex, "mNicIf2", "veth", 7, -1), ""},
		{"node's vlan on the host veth", linkAnswer(peerIndex, "mNicIf3", "vlan", hostIndex, -1), ""},
		{"veth without IFLA_LINK", linkAnswer(peerIndex, "mNicIf1", "veth", -1, nsid), ""},
		// A container node's eth0 is a veth; its IFLA_LINK, an index of
		// the outer namespace, can equal the host veth's.
		{"node's veth pointing at the host veth's index by coincidence", linkAnswer(peerIndex, "eth0", "veth", hostIndex, -1), ""},
		{"another namespace's answer", linkAnswer(peerIndex, "mNicIf1", "veth", hostIndex, nsid+1), ""},
		{"another index", linkAnswer(peerIndex+1, "mNicIf1", "veth", hostIndex, nsid), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := peerOfAnswer([][]byte{tc.answer}, peerIndex, hostIndex, nsid)
			switch {
			case tc.want != "" && (err != nil || got != tc.want):
				t.Errorf("peerOfAnswer = %q, %v; want %q", got, err, tc.want)
			case tc.want == "" && !errors.Is(err, errNoPeer):
				t.Errorf("peerOfAnswer = %q, %v; want errNoPeer", got, err)
			}
		})
	}
}

// TestPrivilegedVethPeerName: this kernel's answer for a real pod end (it
// honours IFLA_TARGET_NETNSID and echoes it) still names the pod end.
func TestPrivilegedVethPeerName(t *testing.T) {
	n := newNode(t, "192.168.0.10")
	podNS := testutil.NewNS(t)
	var got string
	n.do(t, func() error {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: "enipeer"},
			PeerName:      "mNicIf1",
			PeerNamespace: netlink.NsFd(int(podNS.Fd())),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		link, err := netlink.LinkByName("enipeer")
		if err != nil {
			return err
		}
		got, err = vethPeerName(link)
		return err
	})
	if got != "mNicIf1" {
		t.Errorf("vethPeerName = %q, want mNicIf1", got)
	}
}
