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
		case <-t.C:
		}
		pause = min(2*pause, n.linkMaxPoll)
	}
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
