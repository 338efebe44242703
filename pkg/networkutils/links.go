package networkutils

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
)

// ErrLinkNotFound is returned (wrapped) when no link carries the MAC.
var ErrLinkNotFound = errors.New("no link with this MAC")

// LinkByMAC finds the link carrying mac, retrying a few times because ENIs
// hot-plug some seconds after EC2 reports them attached.
func (n *Network) LinkByMAC(ctx context.Context, mac net.HardwareAddr) (Link, error) {
	l, err := n.linkByMAC(ctx, mac)
	if err != nil {
		return Link{}, err
	}
	a := l.Attrs()
	return Link{Name: a.Name, Index: a.Index, MAC: a.HardwareAddr, MTU: a.MTU}, nil
}

func (n *Network) linkByMAC(ctx context.Context, mac net.HardwareAddr) (netlink.Link, error) {
	if len(mac) == 0 {
		return nil, errors.New("find link: empty MAC address")
	}
	l, err := findLink(mac)
	if err == nil || !errors.Is(err, ErrLinkNotFound) {
		return l, err
	}
	// Not plugged yet: the kernel's link notifications say the moment it
	// is, so a pod waits for the hot-plug, not for the next look. The
	// doubling pause stays as the fallback should a notification be lost.
	plugged, stop := n.watchLinks(ctx, mac)
	defer stop()
	deadline := time.Now().Add(n.linkPatience)
	pause := n.linkFirstPoll
	for attempt := 1; ; attempt++ {
		l, err := findLink(mac)
		if err == nil || !errors.Is(err, ErrLinkNotFound) || !time.Now().Before(deadline) {
			return l, err
		}
		n.log.DebugContext(ctx, "link not present yet, retrying", "mac", mac.String(), "attempt", attempt)
		t := time.NewTimer(min(pause, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("find link %s: %w", mac, ctx.Err())
		case <-plugged:
			t.Stop()
			plugged = nil // look now; later waits rely on the pause
		case <-t.C:
		}
		pause = min(2*pause, n.linkMaxPoll)
	}
}

// watchLinks subscribes to the namespace's link notifications and returns
// a channel closed when one names mac. If the subscription fails the
// channel never closes (the caller's pause alone paces the looks). stop
// ends the subscription.
func (n *Network) watchLinks(ctx context.Context, mac net.HardwareAddr) (<-chan struct{}, func()) {
	plugged := make(chan struct{})
	updates := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			n.log.DebugContext(ctx, "link notifications", "err", err)
		},
	})
	if err != nil {
		n.log.DebugContext(ctx, "cannot subscribe to link notifications; polling only", "err", err)
		return plugged, func() {}
	}
	go func() {
		seen := false
		// Read until the subscription ends (stop closes done, which closes
		// the socket and then updates), so its reader never blocks.
		for u := range updates {
			if !seen && u.Link != nil && bytes.Equal(u.Attrs().HardwareAddr, mac) {
				seen = true
				close(plugged)
			}
		}
	}()
	return plugged, func() { close(done) }
}

func findLink(mac net.HardwareAddr) (netlink.Link, error) {
	links, err := dump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if bytes.Equal(l.Attrs().HardwareAddr, mac) {
			return l, nil
		}
	}
	return nil, fmt.Errorf("find link %s: %w", mac, ErrLinkNotFound)
}
