package framecap

import (
	"net"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedCaptureUntagged runs on the host kernel: a TCP connection
// over a plain veth shows up as untagged frames in both directions, and
// frames between other addresses are not attributed to it.
func TestPrivilegedCaptureUntagged(t *testing.T) {
	a, b := testutil.NewNS(t), testutil.NewNS(t)
	err := a.Do(func(ns.NetNS) error {
		if err := netlink.LinkAdd(&netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: "cap0"}, PeerName: "cap1", PeerNamespace: netlink.NsFd(int(b.Fd())),
		}); err != nil {
			return err
		}
		return addrUp("cap0", "10.9.0.1/24")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Do(func(ns.NetNS) error { return addrUp("cap1", "10.9.0.2/24") }); err != nil {
		t.Fatal(err)
	}
	c, err := Open(b.Path(), "cap1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := podnettest.Connect(a.Path(), b.Path(), net.ParseIP("10.9.0.2")); err != nil {
		t.Fatal(err)
	}
	frames, err := c.Drain()
	if err != nil {
		t.Fatal(err)
	}
	var in, out int
	for _, f := range frames {
		if f.VLAN != 0 {
			t.Errorf("untagged link reported a tag: %s", f)
		}
		switch {
		case !f.Outgoing && f.Src.Equal(net.ParseIP("10.9.0.1")) && f.Dst.Equal(net.ParseIP("10.9.0.2")):
			in++
		case f.Outgoing && f.Src.Equal(net.ParseIP("10.9.0.2")) && f.Dst.Equal(net.ParseIP("10.9.0.1")):
			out++
		case f.Src.To4() != nil:
			t.Errorf("unexpected frame %s", f)
		default:
			// IPv6 multicast listener reports of the links coming up.
		}
	}
	// A TCP connection with data needs at least SYN, ACK, data each way.
	if in < 3 || out < 3 {
		t.Errorf("captured %d received and %d sent frames, want at least 3 each: %v", in, out, frames)
	}
	if again, err := c.Drain(); err != nil || len(again) != 0 {
		t.Errorf("second Drain = %v, %v; want nothing new", again, err)
	}
}

func TestParseTaggedInFrame(t *testing.T) {
	frame := make([]byte, 18+20)
	copy(frame[12:], []byte{0x81, 0x00, 0x00, 0x07, 0x08, 0x00})
	copy(frame[18+12:], []byte{10, 2, 0, 55, 10, 2, 0, 1})
	f, ok := parse(frame, nil)
	if !ok || f.VLAN != 7 || !f.Src.Equal(net.ParseIP("10.2.0.55")) || !f.Dst.Equal(net.ParseIP("10.2.0.1")) {
		t.Errorf("parse = %v, %v; want vlan 7 10.2.0.55 > 10.2.0.1", f, ok)
	}
	if _, ok := parse(frame[:20], nil); ok {
		t.Errorf("parse accepted a truncated frame")
	}
	v6 := make([]byte, 14+40)
	copy(v6[12:], []byte{0x86, 0xdd})
	copy(v6[14+8:], net.ParseIP("2001:db8:2::55"))
	copy(v6[14+24:], net.ParseIP("2001:db8:2::1"))
	if f, ok := parse(v6, nil); !ok || f.VLAN != 0 || !f.Src.Equal(net.ParseIP("2001:db8:2::55")) || !f.Dst.Equal(net.ParseIP("2001:db8:2::1")) {
		t.Errorf("parse IPv6 = %v, %v; want untagged 2001:db8:2::55 > 2001:db8:2::1", f, ok)
	}
	arp := make([]byte, 60)
	copy(arp[12:], []byte{0x08, 0x06})
	if _, ok := parse(arp, nil); ok {
		t.Errorf("parse accepted an ARP frame as IPv4")
	}
}

func addrUp(name, cidr string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, a); err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}
