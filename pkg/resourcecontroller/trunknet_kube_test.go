package resourcecontroller

import (
	"io"
	"net"
	"net/url"
	"strconv"
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
}

func startResetProxy(t *testing.T, target string) *resetProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &resetProxy{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
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
				go func() { io.Copy(up, c); up.Close() }()
				io.Copy(c, up)
			}()
		}
	}()
	return p
}

// TestKubeTrunkNetworkErrorsToldOnce: EC2 is unreachable (connections
// reset) for several of the node's trunk init attempts. The node is told
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
	h.addNode(node, inst1, nil)
	h.declareSGP(node)
	waitFor(t, 30*time.Second, "5 reset connections", func() (bool, string) {
		n := p.resets.Load()
		return n >= 5, "resets so far: " + strconv.FormatInt(n, 10)
	})
	p.broken.Store(false)
	h.waitCapacity(node, 9)
	h.waitNodeEvents(node, ReasonNodeTrunkInitiated, 1)
	if failed := h.eventsOf("default", "Node", node, ReasonNodeTrunkFailedInit); len(failed) != 1 {
		t.Fatalf("%s events %q, want one for the one cause", ReasonNodeTrunkFailedInit, failed)
	}
}
