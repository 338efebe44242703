package resourcecontroller

import "sync"

// noteSet remembers the last message told about a key, so a pod that waits
// for capacity gets one event, not one per retry.
type noteSet struct {
	mu sync.Mutex
	m  map[string]string
}

func newNoteSet() *noteSet { return &noteSet{m: map[string]string{}} }

// first reports whether msg is new for key, and records it.
func (n *noteSet) first(key, msg string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m[key] == msg {
		return false
	}
	n.m[key] = msg
	return true
}

// is reports whether msg is the last message recorded for key.
func (n *noteSet) is(key, msg string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.m[key]
	return ok && v == msg
}

func (n *noteSet) clear(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, key)
}

// clearWhere drops the keys drop selects.
func (n *noteSet) clearWhere(drop func(key string) bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range n.m {
		if drop(k) {
			delete(n.m, k)
		}
	}
}
