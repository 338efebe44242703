package networkutils

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// sockets counts the process's open sockets.
func sockets(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// watching reports whether a link subscription's goroutines still run.
func watching(t *testing.T) bool {
	t.Helper()
	var stacks bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&stacks, 2); err != nil {
		t.Fatal(err)
	}
	s := stacks.String()
	return strings.Contains(s, "netlink.linkSubscribeAt") || strings.Contains(s, "networkutils.(*Network).watchLinks")
}

// A LinkByMAC that gives up, at its bound or because its caller's context
// ended, in a namespace where no link changes afterwards (nothing wakes a
// blocked read), leaves no subscription behind: its socket is closed and
// its goroutines end.
func TestPrivilegedLinkByMACLeavesNoSubscription(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel bool
	}{{"bound reached", false}, {"context cancelled", true}} {
		t.Run(tc.name, func(t *testing.T) {
			node := testutil.NewNS(t)
			before := sockets(t)
			n, missed := missWatcher()
			n.linkPatience = 300 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				n.linkPatience = time.Minute
				go func() { <-missed; cancel() }()
			}
			var err error
			do(t, node, func() error { _, err = n.LinkByMAC(ctx, mustMAC(t, "02:00:00:00:0a:0c")); return nil })
			if tc.cancel && !errors.Is(err, context.Canceled) || !tc.cancel && !errors.Is(err, ErrLinkNotFound) {
				t.Fatalf("LinkByMAC of a link that never comes: %v", err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for sockets(t) > before || watching(t) {
				if time.Now().After(deadline) {
					t.Fatalf("after LinkByMAC returned: %d sockets open (%d before), subscription running %v", sockets(t), before, watching(t))
				}
				time.Sleep(10 * time.Millisecond) // pacing between polls of the condition
			}
		})
	}
}

// A notification for another link neither ends the wait with the wrong
// link nor uses up the wake-up: with looks paced a minute apart, the ENI's
// own link, plugged after another one, is still found within seconds.
func TestPrivilegedLinkByMACIgnoresOtherLinks(t *testing.T) {
	node := testutil.NewNS(t)
	n, missed := missWatcher()
	n.linkFirstPoll, n.linkMaxPoll = time.Minute, time.Minute
	mac := mustMAC(t, "02:00:00:00:0a:0d")
	added := make(chan error, 1)
	go func() {
		<-missed
		added <- node.Do(func(ns.NetNS) error {
			other := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth5", HardwareAddr: mustMAC(t, "02:00:00:00:0a:0e")}, PeerName: "eth5peer"}
			if err := netlink.LinkAdd(other); err != nil {
				return err
			}
			if err := netlink.LinkSetUp(other); err != nil {
				return err
			}
			return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth6", HardwareAddr: mac}, PeerName: "eth6peer"})
		})
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var (
		l   Link
		err error
	)
	do(t, node, func() error { l, err = n.LinkByMAC(ctx, mac); return nil })
	if aerr := <-added; aerr != nil {
		t.Fatal(aerr)
	}
	if err != nil {
		t.Fatalf("LinkByMAC with another link plugged first: %v", err)
	}
	if l.Name != "eth6" || l.MAC.String() != mac.String() {
		t.Fatalf("LinkByMAC found %+v, want eth6 with %s", l, mac)
	}
}
