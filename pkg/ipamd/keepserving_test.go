package ipamd

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeepServingRestartsAFailedServer: the metrics server fails (its
// listener breaks under it); ipamd keeps running, listens again after the
// back-off's first pause and serves /metrics on the new listener, and
// the loop ends with its context.
func TestKeepServingRestartsAFailedServer(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	broken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = broken.Close() // Serve on it fails at once
	var addr atomic.Value
	listen := func() (net.Listener, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			addr.Store(l.Addr().String())
		}
		return l, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		keepServing(ctx, "metrics", broken, listen, h.n.metrics.ServeListener, h.n.log)
	}()
	waitFor(t, 10*time.Second, "/metrics served again after the server failed", func() bool {
		a, _ := addr.Load().(string)
		if a == "" {
			return false
		}
		resp, err := http.Get("http://" + a + "/metrics")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("keepServing still runs 10 s after its context ended")
	}
}
