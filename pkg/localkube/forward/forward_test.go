package forward

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// Connections made inside a namespace reach a server on this process's
// loopback through every listen address, and Close ends even a connection
// that stays open (as a watch does).
func TestPrivilegedForwarderRelaysAndCloses(t *testing.T) {
	ns := testutil.NewNS(t)
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close() })
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()

	addrs := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:6443"), netip.MustParseAddrPort("127.0.0.2:443")}
	f, err := In(ns.Path(), up.Addr().String(), addrs...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var open net.Conn
	for _, a := range addrs {
		c, err := dataplane.DialIn(ctx, ns.Path(), netip.Addr{}, a)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "ping "+a.String()+"\n"); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "ping "+a.String()+"\n" {
			t.Fatalf("through %s: read %q, %v", a, line, err)
		}
		open = c
	}

	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return while a connection was open")
	}
	if n, err := open.Read(make([]byte, 1)); err == nil {
		t.Errorf("the open connection still reads (%d bytes) after Close", n)
	}
	if c, err := dataplane.DialIn(ctx, ns.Path(), netip.Addr{}, addrs[0]); err == nil {
		c.Close()
		t.Errorf("%s still accepts after Close", addrs[0])
	}
}
