package vpcsim

import (
	"errors"
	"net/http"
	"sync"
)

// SGDrop counts the packets an ENI's security groups dropped in one
// direction (ingress: sent to the ENI; egress: sent by it) because no rule
// of any of Groups allowed them.
type SGDrop struct {
	ENIID     string   `json:"eniId"`
	Direction string   `json:"direction"` // "ingress" or "egress"
	Groups    []string `json:"groups"`
	Packets   uint64   `json:"packets"`
	Bytes     uint64   `json:"bytes"`
}

// sgDropSource is where the admin API reads drop counters; the data plane
// registers itself (SetSGDropSource) when it mirrors this Sim.
type sgDropSource struct {
	mu sync.Mutex
	fn func() ([]SGDrop, error)
}

var errNoDataPlane = errors.New("no data plane enforces security groups for this simulator")

// SetSGDropSource makes GET /sgdrops on the admin API answer fn's counts.
func (s *Sim) SetSGDropSource(fn func() ([]SGDrop, error)) {
	s.drops.mu.Lock()
	s.drops.fn = fn
	s.drops.mu.Unlock()
}

func (s *Sim) serveSGDrops(w http.ResponseWriter, _ *http.Request) {
	s.drops.mu.Lock()
	fn := s.drops.fn
	s.drops.mu.Unlock()
	if fn == nil {
		writeJSONError(w, http.StatusNotFound, errNoDataPlane)
		return
	}
	drops, err := fn()
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, drops)
}
