package podnet

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// linkAnswer is an RTM_NEWLINK answer's payload for link index named
// name, of kind (none when ""), whose IFLA_LINK is link (none when < 0).
func linkAnswer(index int, name, kind string, link int) []byte {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	b := msg.Serialize()
	b = append(b, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)).Serialize()...)
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
	const hostIndex, peerIndex = 41, 3
	for _, tc := range []struct {
		name   string
		answer []byte
		want   string
	}{
		{"pod end", linkAnswer(peerIndex, "mNicIf1", "veth", hostIndex), "mNicIf1"},
		{"node's device of that index", linkAnswer(peerIndex, "eth1", "", -1), ""},
		{"node's other veth of that index", linkAnswer(peerIndex, "mNicIf2", "veth", 7), ""},
		{"node's vlan on the host veth", linkAnswer(peerIndex, "mNicIf3", "vlan", hostIndex), ""},
		{"veth without IFLA_LINK", linkAnswer(peerIndex, "mNicIf1", "veth", -1), ""},
		{"another index", linkAnswer(peerIndex+1, "mNicIf1", "veth", hostIndex), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := peerOfAnswer([][]byte{tc.answer}, peerIndex, hostIndex)
			switch {
			case tc.want != "" && (err != nil || got != tc.want):
				t.Errorf("peerOfAnswer = %q, %v; want %q", got, err, tc.want)
			case tc.want == "" && !errors.Is(err, errNoPeer):
				t.Errorf("peerOfAnswer = %q, %v; want errNoPeer", got, err)
			}
		})
	}
}
