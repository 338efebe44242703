package resourcecontroller

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// heldCalls serves next (the local VPC's EC2 API, or another heldCalls)
// and answers no call of action that hold picks (nil: every one) until
// release is closed; a call given up by its caller meanwhile never reaches
// EC2. parked counts the calls held now, so a test can wait for the
// window it opens instead of guessing it with a latency.
type heldCalls struct {
	next    http.Handler
	action  string
	hold    func(q url.Values) bool
	release chan struct{}
	parked  atomic.Int32
}

// holdCalls puts a heldCalls of action in front of next; release lets its
// calls through (serveEC2 runs it at the test's end).
func holdCalls(next http.Handler, action string, hold func(q url.Values) bool) (h *heldCalls, release func()) {
	h = &heldCalls{next: next, action: action, hold: hold, release: make(chan struct{})}
	return h, sync.OnceFunc(func() { close(h.release) })
}

func (h *heldCalls) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if q, _ := url.ParseQuery(string(body)); q.Get("Action") == h.action && (h.hold == nil || h.hold(q)) {
		h.parked.Add(1)
		select {
		case <-h.release:
			h.parked.Add(-1)
		case <-r.Context().Done():
			h.parked.Add(-1)
			return
		}
	}
	h.next.ServeHTTP(w, r)
}

// holdDeletesOf holds EC2's DeleteNetworkInterface of the ENI last given
// to holdENI (none at first), so a test can hold one ENI's delete it
// learns the id of only once made.
func holdDeletesOf(next http.Handler) (h *heldCalls, release func(), holdENI func(id string)) {
	var eni atomic.Value
	eni.Store("")
	h, release = holdCalls(next, "DeleteNetworkInterface", func(q url.Values) bool {
		return q.Get("NetworkInterfaceId") == eni.Load().(string)
	})
	return h, release, func(id string) { eni.Store(id) }
}

// serveEC2 serves h to a controller's EC2 client for the test; at its
// end the releases of h's holds run, then the server closes (it waits
// for the calls under way).
func serveEC2(t *testing.T, w *world, h http.Handler, releases ...func()) *awsutils.EC2 {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for _, r := range releases {
		t.Cleanup(r) // cleanups run last first: before the Close
	}
	return fastEC2(t, w.env.Sim.Region(), srv.URL, 3)
}

// heldAfterFirst fronts w's EC2 with heldCalls holding the delete of
// every ENI but the first one deleted; it returns a controller's client
// of it and the release (also run at the test's end).
func heldAfterFirst(t *testing.T, w *world) (*awsutils.EC2, func()) {
	t.Helper()
	var mu sync.Mutex
	first := ""
	return heldFront(t, w, func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		if first == "" {
			first = id
		}
		return id != first
	})
}

// heldFront fronts w's EC2 with heldCalls holding the deletes of the ENIs
// hold names (nil: every one); it returns a controller's client of it and
// the release (also run at the test's end).
func heldFront(t *testing.T, w *world, hold func(eniID string) bool) (*awsutils.EC2, func()) {
	t.Helper()
	var pick func(url.Values) bool
	if hold != nil {
		pick = func(q url.Values) bool { return hold(q.Get("NetworkInterfaceId")) }
	}
	held, release := holdCalls(w.env.Sim.EC2Handler(), "DeleteNetworkInterface", pick)
	return serveEC2(t, w, held, release), release
}
