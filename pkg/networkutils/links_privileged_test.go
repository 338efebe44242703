package networkutils

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// onMessage calls f for every log record with message msg: the test's
// signal that LinkByMAC has looked once and missed.
type onMessage struct {
	msg string
	f   func()
}

func (h onMessage) Enabled(context.Context, slog.Level) bool { return true }
func (h onMessage) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.f()
	}
	return nil
}
func (h onMessage) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h onMessage) WithGroup(string) slog.Handler      { return h }

// A hot-plugged ENI's link that appears only after LinkByMAC's first look
// (as vpcsim and EC2 plug it a moment after the attachment completes) is
// found by a later look, well within the bound.
// missWatcher returns a Network and a channel closed once its LinkByMAC has
// looked for a link and missed.
func missWatcher() (*Network, <-chan struct{}) {
	missed := make(chan struct{})
	var once sync.Once
	return New(slog.New(onMessage{msg: "link not present yet, retrying", f: func() { once.Do(func() { close(missed) }) }})), missed
}

func TestPrivilegedLinkByMACFindsALateLink(t *testing.T) {
	node := testutil.NewNS(t)
	n, missed := missWatcher()
	mac := mustMAC(t, "02:00:00:00:0a:0a")
	added := make(chan error, 1)
	go func() {
		<-missed
		added <- node.Do(func(ns.NetNS) error {
			// A veth stands in for the ENI (this kernel has no dummy links).
			return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth7", HardwareAddr: mac}, PeerName: "eth7peer"})
		})
	}()
	var (
		l   Link
		err error
	)
	do(t, node, func() error { l, err = n.LinkByMAC(context.Background(), mac); return nil })
	if err != nil {
		t.Fatalf("LinkByMAC of a link plugged after the first look: %v", err)
	}
	if aerr := <-added; aerr != nil {
		t.Fatal(aerr)
	}
	if l.Name != "eth7" || l.MAC.String() != mac.String() {
		t.Fatalf("LinkByMAC found %+v, want eth7 with %s", l, mac)
	}
}

// The kernel's notification, not the next look, ends the wait: with looks
// paced a minute apart, a link plugged after the first miss is still found
// within the test's few seconds.
func TestPrivilegedLinkByMACWakesOnHotPlug(t *testing.T) {
	node := testutil.NewNS(t)
	n, missed := missWatcher()
	n.linkFirstPoll, n.linkMaxPoll = time.Minute, time.Minute
	mac := mustMAC(t, "02:00:00:00:0a:0b")
	added := make(chan error, 1)
	go func() {
		<-missed
		added <- node.Do(func(ns.NetNS) error {
			return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth8", HardwareAddr: mac}, PeerName: "eth8peer"})
		})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		l   Link
		err error
	)
	do(t, node, func() error { l, err = n.LinkByMAC(ctx, mac); return nil })
	if err != nil {
		t.Fatalf("LinkByMAC of a link plugged while it waited: %v", err)
	}
	if aerr := <-added; aerr != nil {
		t.Fatal(aerr)
	}
	if l.Name != "eth8" {
		t.Fatalf("LinkByMAC found %+v, want eth8", l)
	}
}
