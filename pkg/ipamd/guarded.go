package ipamd

import "sync"

// guarded is a value one side writes while others read it, with its own
// lock, so no mutex guards a field it does not sit next to.
type guarded[T any] struct {
	mu sync.RWMutex
	v  T
}

func (g *guarded[T]) get() T {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.v
}

func (g *guarded[T]) set(v T) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.v = v
}
