package localvpc

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// apiProxy makes the kube-apiserver (on the machine's loopback) reachable
// from inside a node: it listens on addresses of the node's network
// namespace and copies bytes to the apiserver. TLS passes through
// untouched. Only the driver's own sockets cross namespaces; no route or
// address is added to the machine.
type apiProxy struct {
	upstream string
	ls       []net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// startAPIProxy listens on addrs (host:port) inside the network namespace
// at nsPath.
func startAPIProxy(nsPath, upstream string, addrs []string) (*apiProxy, error) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &apiProxy{upstream: upstream, cancel: cancel}
	for _, a := range addrs {
		var l net.Listener
		err := dataplane.InNS(nsPath, func() error {
			var err error
			l, err = net.Listen("tcp", a)
			return err
		})
		if err != nil {
			p.close()
			return nil, fmt.Errorf("apiserver forwarder on %s in %s: %w", a, nsPath, err)
		}
		p.ls = append(p.ls, l)
		p.wg.Add(1)
		go p.serve(ctx, l)
	}
	return p, nil
}

func (p *apiProxy) serve(ctx context.Context, l net.Listener) {
	defer p.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return // listener closed by close()
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(ctx, c)
		}()
	}
}

func (p *apiProxy) forward(ctx context.Context, c net.Conn) {
	defer c.Close()
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", p.upstream)
	if err != nil {
		return // the client sees its connection closed, as with a dead apiserver
	}
	defer up.Close()
	// Close both sides once the context ends so long watches do not hold
	// close() up.
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if t, ok := c.(*net.TCPConn); ok {
		_ = t.CloseWrite() // the peer may be gone already
	}
}

func (p *apiProxy) close() {
	p.cancel()
	for _, l := range p.ls {
		_ = l.Close() // unblocks Accept
	}
	p.wg.Wait()
}
