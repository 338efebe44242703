// Package forward makes an API server on the machine's loopback reachable
// from inside a network namespace (a local VPC's, a node's), for the local
// clusters of pkg/localkube and pkg/localvpc. It is apart from localkube so
// that localvpc does not import the Kubernetes client.
package forward

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// VPCAddr is where InVPC listens in the VPC namespace: beside the EC2
// endpoint, which every node already routes to.
var VPCAddr = netip.AddrPortFrom(dataplane.EC2Addr.Addr(), 6443)

// Forwarder makes the API server, on the machine's loopback, reachable from
// inside a network namespace: it listens there and relays every connection
// to the API server, dialled from this process's namespace. TLS passes
// through untouched; only this process's sockets cross namespaces, no route
// or address is added to the machine.
type Forwarder struct {
	target string
	ls     []net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// InVPC listens on VPCAddr inside the VPC namespace vpcNS and relays to
// target (host:port).
func InVPC(vpcNS, target string) (*Forwarder, error) {
	return In(vpcNS, target, VPCAddr)
}

// In listens on addrs inside the network namespace at nsPath and
// relays to target (host:port). Close the result to stop.
func In(nsPath, target string, addrs ...netip.AddrPort) (*Forwarder, error) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &Forwarder{target: target, cancel: cancel}
	for _, a := range addrs {
		l, err := dataplane.ListenIn(nsPath, a)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("API server forwarder: %w", err)
		}
		f.ls = append(f.ls, l)
		f.wg.Add(1)
		go f.serve(ctx, l)
	}
	return f, nil
}

// Close stops listening, cuts the open connections (a watch would hold
// it up otherwise) and waits for their relays to end.
func (f *Forwarder) Close() error {
	f.cancel()
	for _, l := range f.ls {
		_ = l.Close() // unblocks Accept
	}
	f.wg.Wait()
	return nil
}

func (f *Forwarder) serve(ctx context.Context, l net.Listener) {
	defer f.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return // closed by Close
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.relay(ctx, c)
		}()
	}
}

func (f *Forwarder) relay(ctx context.Context, in net.Conn) {
	defer in.Close()
	d := net.Dialer{Timeout: 5 * time.Second}
	out, err := d.DialContext(ctx, "tcp", f.target)
	if err != nil {
		return // the client sees its connection closed, as with a dead API server
	}
	defer out.Close()
	stop := context.AfterFunc(ctx, func() { _ = in.Close(); _ = out.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // the peer may be gone already
		}
		done <- struct{}{}
	}
	go cp(out, in)
	go cp(in, out)
	<-done
	<-done
}
