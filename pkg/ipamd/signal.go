package ipamd

import "sync"

// signal wakes every goroutine waiting on it at once: broadcast closes the
// current channel and starts a new one for later waiters.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

// wait returns the channel the next broadcast closes.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func (s *signal) broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}

// latch is a one-way switch (initialised, terminating): set once, then
// seen by every reader and every waiter.
type latch struct {
	once sync.Once
	ch   chan struct{}
}

func newLatch() *latch { return &latch{ch: make(chan struct{})} }

// set closes the latch; later calls do nothing.
func (l *latch) set() { l.once.Do(func() { close(l.ch) }) }

// isSet reports whether set has run.
func (l *latch) isSet() bool {
	select {
	case <-l.ch:
		return true
	default:
		return false
	}
}

// done is closed once set has run.
func (l *latch) done() <-chan struct{} { return l.ch }
