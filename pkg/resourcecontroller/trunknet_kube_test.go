package resourcecontroller

import (
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// resetProxy forwards TCP to EC2 (vpcsim) and, while broken, resets each
// connection it accepts: the controller sees a real network error whose
// text names the client's ephemeral port, different each attempt.
type resetProxy struct {
	ln     net.Listener
	broken atomic.Bool
	resets atomic.Int64
	mu     sync.Mutex
	conns  []net.Conn // forwarded, both sides
}

// track remembers a forwarded connection for close.
func (p *resetProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

// close stops the proxy. The controller's EC2 client keeps idle
// connections open after it stops (90 s in Go's transport): they are cut
// here, not waited for.
func (p *resetProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func startResetProxy(t *testing.T, target string) *resetProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &resetProxy{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { p.close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.broken.Load() {
				p.resets.Add(1)
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				p.track(c)
				p.track(up)
				go func() { io.Copy(up, c); up.Close() }()
				io.Copy(c, up)
			}()
		}
	}()
	return p
}

// TestKubeTrunkNetworkErrorsToldOnce: EC2 is unreachable (connections
// reset) for five of the node's trunk init attempts. The node is told
// once: the errors differ only in the ephemeral ports they name. Before,
// code-less errors were keyed by their text and each retry sent another
// NodeTrunkFailedInit.
func TestKubeTrunkNetworkErrorsToldOnce(t *testing.T) {
	w := newWorld(t)
	u, err := url.Parse(w.env.EC2URL)
	if err != nil {
		t.Fatal(err)
	}
	p := startResetProxy(t, u.Host)
	e := fastEC2(t, w.env.Sim.Region(), "http://"+p.ln.Addr().String(), 1)
	h := newHarness(t, e, fastConfig())
	const node = "rc-trunk-netdown"
	p.broken.Store(true)
	// Counted by their failures, not by the resets: the lost-branch sweep
	// and the cluster cleaner go through the proxy too, and their resets
	// alone could end the outage before the node's first try.
	failedInits := metricOpErrors.WithLabelValues(opInitTrunk)
	before := counterValue(t, failedInits)
	h.addNode(node, inst1, nil)
	h.declareSGP(node)
	waitFor(t, 30*time.Second, "5 failed trunk inits", func() (bool, string) {
		n := counterValue(t, failedInits) - before
		return n >= 5, fmt.Sprintf("failed trunk inits so far: %v (resets %d)", n, p.resets.Load())
	})
	p.broken.Store(false)
	h.waitCapacity(node, 9)
	h.waitNodeEvents(node, ReasonNodeTrunkInitiated, 1)
	if failed := h.eventsOf("default", "Node", node, ReasonNodeTrunkFailedInit); len(failed) != 1 {
		t.Fatalf("%s events %q, want one for the one cause", ReasonNodeTrunkFailedInit, failed)
	}
}
