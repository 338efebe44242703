package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedWhoamiOutlastsFailedNeighbourDiscovery: a whoami whose
// first neighbour discovery gives up (EHOSTUNREACH, as a fresh link's can
// on a loaded machine) asks again within its deadline and reaches the
// peer once the peer answers. The peer stays silent to ARP until the
// caller's discovery has failed, so the first attempt always fails.
func TestPrivilegedWhoamiOutlastsFailedNeighbourDiscovery(t *testing.T) {
	testutil.Privileged(t)
	client, server := testutil.NewNS(t), testutil.NewNS(t)
	clientIP, serverIP := netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
	withHandle(t, client.Path(), func(h *netlink.Handle) error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "c0"}, PeerName: "s0", PeerNamespace: netlink.NsFd(int(server.Fd()))}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("veth: %w", err)
		}
		return addrUp(h, "c0", netip.PrefixFrom(clientIP, 24))
	})
	withHandle(t, server.Path(), func(h *netlink.Handle) error {
		if err := addrUp(h, "s0", netip.PrefixFrom(serverIP, 24)); err != nil {
			return err
		}
		return setARP(h, "s0", false)
	})
	serveWhoami(t, server.Path(), serverIP)

	// The server answers ARP again once the client's discovery failed.
	answering := make(chan error, 1)
	go func() {
		err := testutil.Eventually(context.Background(), 30*time.Second, func() error {
			return inHandle(client.Path(), func(h *netlink.Handle) error { return neighFailed(h, "c0", serverIP) })
		})
		if err == nil {
			err = inHandle(server.Path(), func(h *netlink.Handle) error { return setARP(h, "s0", true) })
		}
		answering <- err
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := Whoami(ctx, client.Path(), netip.Addr{}, netip.AddrPortFrom(serverIP, WhoamiPort))
	if aerr := <-answering; aerr != nil {
		t.Fatalf("the client's neighbour discovery never failed: %v", aerr)
	}
	if err != nil || got != clientIP {
		t.Fatalf("whoami after a failed neighbour discovery: saw %v, err %v (EHOSTUNREACH: %v); want %s",
			got, err, errors.Is(err, unix.EHOSTUNREACH), clientIP)
	}
}

// inHandle runs fn with a netlink handle in the namespace at path.
func inHandle(path string, fn func(*netlink.Handle) error) error {
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}

func addrUp(h *netlink.Handle, name string, p netip.Prefix) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(p)}); err != nil {
		return err
	}
	return h.LinkSetUp(l)
}

func setARP(h *netlink.Handle, name string, on bool) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	if on {
		return h.LinkSetARPOn(l)
	}
	return h.LinkSetARPOff(l)
}

// neighFailed is nil once the neighbour entry for a on link name has
// failed its discovery.
func neighFailed(h *netlink.Handle, name string, a netip.Addr) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	neighs, err := h.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	for _, n := range neighs {
		if n.IP.Equal(a.AsSlice()) && n.State == netlink.NUD_FAILED {
			return nil
		}
	}
	return fmt.Errorf("no failed neighbour entry for %s on %s: %v", a, name, neighs)
}
