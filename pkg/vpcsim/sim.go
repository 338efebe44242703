// Package vpcsim simulates the parts of AWS that the VPC CNI talks to: the
// EC2 Query API and each instance's metadata service (IMDS), over an EC2
// model with VPCs, subnets, instances and ENIs, plus realism knobs (latency,
// attach delays, IMDS lag, injected errors, EC2's request token buckets).
//
// The model (world*.go, model_*.go) is pure state and rules; the EC2 protocol
// (ec2_*.go), IMDS (imds*.go) and admin API (admin.go) are HTTP layers on top.
package vpcsim

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Sim is one simulated AWS account and region. It is safe for concurrent use.
type Sim struct {
	now   func() time.Time
	log   *slog.Logger
	inj   *injector
	lim   *limiter
	stats *statsRecorder
	drops sgDropSource
	// largeDelay holds back EC2 answers over largeResponse bytes.
	largeDelay time.Duration

	mu       sync.Mutex
	w        *world
	imds     map[string][]imdsSnap // instance id → views over time
	tokens   map[string]imdsToken
	timer    *time.Timer
	timerDue time.Time
	closed   bool

	// event delivery: queue under qmu, one dispatcher at a time under dmu;
	// delivered (under qmu, signalled on dcond) is the last sequence number
	// handed to every subscriber, so a caller can wait for its own events.
	qmu       sync.Mutex
	queue     []queuedEvent
	seq       uint64
	delivered uint64
	dcond     *sync.Cond
	subs      map[int]*subscriber
	nextID    int
	dmu       sync.Mutex
}

type queuedEvent struct {
	seq uint64
	ev  Event
}

type subscriber struct {
	fn    func(Event)
	start uint64 // first sequence number it receives live
}

// Option configures a Sim.
type Option func(*Sim)

// WithClock sets the clock used for delays, IMDS lag, token-bucket refill and
// timestamps. With a fake clock, pending attach/detach transitions complete on
// the first call after the clock passes their due time.
func WithClock(now func() time.Time) Option { return func(s *Sim) { s.now = now } }

// WithLargeResponseDelay sets how long an EC2 answer over 3 KiB waits before
// it is written (default DefaultLargeResponseDelay; 0 or less: no wait). The
// wait shields the unmodified SDK client from a race of its own (see
// DefaultLargeResponseDelay); turn it off only for clients that buffer
// request bodies in memory.
func WithLargeResponseDelay(d time.Duration) Option {
	return func(s *Sim) { s.largeDelay = max(d, 0) }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Sim) { s.log = l } }

// New validates the scenario and builds the world.
func New(sc Scenario, opts ...Option) (*Sim, error) {
	s := &Sim{now: time.Now, largeDelay: DefaultLargeResponseDelay, log: slog.New(slog.NewTextHandler(io.Discard, nil)), imds: map[string][]imdsSnap{}, tokens: map[string]imdsToken{}, subs: map[int]*subscriber{}}
	s.dcond = sync.NewCond(&s.qmu)
	for _, o := range opts {
		o(s)
	}
	f := sc.Faults
	f.DenyActions = append(append([]string(nil), f.DenyActions...), sc.DenyActions...)
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	w, err := newWorld(sc, s.now)
	if err != nil {
		return nil, err
	}
	w.events = nil // the initial world is replayed to subscribers instead
	w.sgDirty = false
	s.w = w
	s.inj = newInjector(f)
	s.lim = newLimiter(s.now)
	s.lim.set(f.Throttle)
	s.stats = newStatsRecorder()
	w.attachDelay, w.detachDelay = time.Duration(f.AttachDelay), time.Duration(f.DetachDelay)
	s.recordIMDS(true)
	return s, nil
}

// Close stops the internal timer. The Sim must not be used afterwards.
func (s *Sim) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
}

// Region is the simulated region.
func (s *Sim) Region() string { return s.w.region }

// do runs fn on the world under the lock, after completing due transitions,
// then records IMDS history and delivers the events fn produced.
func (s *Sim) do(mutating bool, fn func(w *world) error) error {
	var (
		err  error
		last uint64
	)
	func() {
		s.mu.Lock()
		defer s.mu.Unlock() // a panic in fn must not wedge the simulator
		s.w.settle()
		if fn != nil {
			err = fn(s.w)
		}
		if s.w.sgDirty {
			s.w.sgDirty = false
			s.w.emit(s.w.sgSnapshot())
		}
		events := s.w.events
		s.w.events = nil
		if mutating || len(events) > 0 || len(s.w.touched) > 0 {
			s.recordIMDS(false)
		}
		last = s.enqueue(events)
		s.schedule()
	}()
	s.dispatchThrough(last)
	return err
}

// schedule arms a timer for the next pending transition so that events fire
// without anyone calling in (with the real clock).
func (s *Sim) schedule() {
	due := s.w.nextDue()
	if due.IsZero() || s.closed {
		return
	}
	if s.timer != nil && !s.timerDue.IsZero() && !due.Before(s.timerDue) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	d := due.Sub(s.now())
	if d < time.Millisecond {
		d = time.Millisecond
	}
	s.timerDue = due
	s.timer = time.AfterFunc(d, func() {
		s.mu.Lock()
		s.timerDue = time.Time{}
		s.mu.Unlock()
		_ = s.do(false, nil)
	})
}

// SetFaults replaces the fault settings at runtime. Token buckets restart full.
func (s *Sim) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.inj.set(f)
	s.lim.set(f.Throttle)
	s.mu.Lock()
	s.w.attachDelay, s.w.detachDelay = time.Duration(f.AttachDelay), time.Duration(f.DetachDelay)
	s.mu.Unlock()
	return nil
}

// Faults returns the current fault settings.
func (s *Sim) Faults() Faults { return s.inj.faults() }

// Stats returns call counters.
func (s *Sim) Stats() Stats { return s.stats.snapshot() }

// RunInstance launches an instance with its primary ENI attached.
func (s *Sim) RunInstance(spec InstanceSpec) (InstanceView, error) {
	var v InstanceView
	err := s.do(true, func(w *world) error {
		in, err := w.runInstance(spec)
		if err != nil {
			return err
		}
		v = w.instanceView(in)
		return nil
	})
	return v, err
}

// TerminateInstance terminates an instance: its ENIs are detached, those with
// delete-on-termination are deleted and their addresses freed.
func (s *Sim) TerminateInstance(id string) error {
	return s.do(true, func(w *world) error { return w.terminateInstance(id) })
}

// Instance returns the EC2 view of an instance (no IMDS lag).
func (s *Sim) Instance(id string) (InstanceView, error) {
	var v InstanceView
	err := s.do(false, func(w *world) error {
		in, err := w.instance(id)
		if err != nil {
			return err
		}
		v = w.instanceView(in)
		return nil
	})
	return v, err
}

// NetworkInterfaces returns every ENI in the account, sorted by id.
func (s *Sim) NetworkInterfaces() []ENIView {
	var out []ENIView
	_ = s.do(false, func(w *world) error {
		out = w.state().NetworkInterfaces
		return nil
	})
	return out
}

// State returns a snapshot of the whole account.
func (s *Sim) State() State {
	var st State
	_ = s.do(false, func(w *world) error {
		st = w.state()
		return nil
	})
	return st
}
