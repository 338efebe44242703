// Package framecap records the IP frames one link sends and receives,
// with their 802.1Q VLAN id, so a test can prove which traffic crossed a
// trunk tagged and which did not cross it at all.
package framecap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Frame is one IPv4 or IPv6 frame seen on the link.
type Frame struct {
	// VLAN is the 802.1Q id, 0 for an untagged frame.
	VLAN int
	// Outgoing is true for frames the link sent, false for received ones.
	Outgoing bool
	Src, Dst net.IP
}

func (f Frame) String() string {
	dir := "in"
	if f.Outgoing {
		dir = "out"
	}
	return fmt.Sprintf("%s vlan %d %s > %s", dir, f.VLAN, f.Src, f.Dst)
}

// Capture is an AF_PACKET socket bound to one link.
type Capture struct {
	fd   int
	link string
}

const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100
	// rcvBuf holds every frame of a test's few connections until Drain.
	rcvBuf = 4 << 20
)

// Open starts recording on link in the network namespace at nsPath. Frames
// are queued in the kernel until Drain reads them.
func Open(nsPath, link string) (*Capture, error) {
	c := &Capture{fd: -1, link: link}
	err := ns.WithNetNSPath(nsPath, func(ns.NetNS) error {
		l, err := netlink.LinkByName(link)
		if err != nil {
			return fmt.Errorf("find link: %w", err)
		}
		// Protocol 0 until bind, so no other link's frames are queued.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		c.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return fmt.Errorf("enable PACKET_AUXDATA: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
			return fmt.Errorf("set receive buffer: %w", err)
		}
		sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Attrs().Index}
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("bind to ifindex %d: %w", l.Attrs().Index, err)
		}
		return nil
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("capture on %s in %s: %w", link, nsPath, err)
	}
	return c, nil
}

// Drain returns the IP frames recorded since Open or the last Drain.
// Frames are queued as the kernel sends or receives them, so once the
// traffic under test has completed, everything it produced is here.
func (c *Capture) Drain() ([]Frame, error) {
	var frames []Frame
	buf := make([]byte, 65536)
	oob := make([]byte, unix.CmsgSpace(32))
	for {
		n, oobn, flags, from, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			return frames, nil
		}
		if err != nil {
			return frames, fmt.Errorf("read capture on %s: %w", c.link, err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			continue
		}
		f, ok := parse(buf[:n], oob[:oobn])
		if !ok {
			continue
		}
		if ll, isLL := from.(*unix.SockaddrLinklayer); isLL {
			f.Outgoing = ll.Pkttype == unix.PACKET_OUTGOING
		}
		frames = append(frames, f)
	}
}

// Close stops recording.
func (c *Capture) Close() {
	if c.fd >= 0 {
		_ = unix.Close(c.fd)
		c.fd = -1
	}
}

// parse reads an Ethernet frame. The kernel usually moves the 802.1Q tag
// out of the frame into packet metadata, reported as auxiliary data; a tag
// left in the frame is read from there instead.
func parse(frame, oob []byte) (Frame, bool) {
	var f Frame
	if len(frame) < 14 {
		return f, false
	}
	etherType := binary.BigEndian.Uint16(frame[12:14])
	off := 14
	if etherType == etherTypeVLAN && len(frame) >= 18 {
		f.VLAN = int(binary.BigEndian.Uint16(frame[14:16]) & 0xfff)
		etherType = binary.BigEndian.Uint16(frame[16:18])
		off = 18
	}
	if vlan, ok := auxVLAN(oob); ok {
		f.VLAN = vlan
	}
	switch {
	case etherType == etherTypeIPv4 && len(frame) >= off+20:
		f.Src = net.IP(append([]byte(nil), frame[off+12:off+16]...))
		f.Dst = net.IP(append([]byte(nil), frame[off+16:off+20]...))
	case etherType == etherTypeIPv6 && len(frame) >= off+40:
		f.Src = net.IP(append([]byte(nil), frame[off+8:off+24]...))
		f.Dst = net.IP(append([]byte(nil), frame[off+24:off+40]...))
	default:
		return f, false
	}
	return f, true
}

// auxVLAN reads the VLAN id from a tpacket_auxdata control message.
func auxVLAN(oob []byte) (int, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < 20 {
			continue
		}
		// struct tpacket_auxdata: status u32, len u32, snaplen u32,
		// mac u16, net u16, vlan_tci u16, vlan_tpid u16.
		status := binary.NativeEndian.Uint32(m.Data[0:4])
		if status&unix.TP_STATUS_VLAN_VALID == 0 {
			return 0, false
		}
		return int(binary.NativeEndian.Uint16(m.Data[16:18]) & 0xfff), true
	}
	return 0, false
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
