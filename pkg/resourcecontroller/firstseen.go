package resourcecontroller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// firstSeen remembers, by the controller's own clock, when the start-up
// sweep first saw each Node and CNINode (by uid). How long an object has
// existed is measured from there, not from its creationTimestamp: that is
// the API server's clock, and a controller clock ahead of it by more than
// DeinitDelay took a Node registered again a moment ago for an old one.
type firstSeen struct {
	mu sync.Mutex
	at map[types.UID]time.Time
}

func newFirstSeen() *firstSeen { return &firstSeen{at: map[types.UID]time.Time{}} }

// see records now for the uids not seen yet, forgets those not among
// uids (gone since), and returns when each of uids was first seen.
func (f *firstSeen) see(uids []types.UID, now time.Time) map[types.UID]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[types.UID]time.Time, len(uids))
	for _, u := range uids {
		at, ok := f.at[u]
		if !ok {
			at = now
		}
		out[u] = at
	}
	f.at = out
	return out
}
