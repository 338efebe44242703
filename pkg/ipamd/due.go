package ipamd

import (
	"context"
	"time"
)

// due is when a request's answer is due, so that it (rather than the
// client's own deadline error) reaches the client: a little before the
// request's deadline, or Intervals.AddWait after its start when it has
// none. The context bounded by it is made only when the request must
// wait (the node not initialised, an empty pool, a Kubernetes call):
// most ADDs and DELs find an address or release one at once, and a
// context with a deadline costs each of them a timer, a child
// registration with the request's context and four allocations
// (bench/README.md, figure 21).
type due struct {
	parent context.Context
	at     time.Time
	ctx    context.Context
	cancel context.CancelFunc
}

// dueBy computes when the answer to the request of ctx is due.
func (h *handout) dueBy(ctx context.Context) due {
	d, ok := ctx.Deadline()
	if !ok {
		return due{parent: ctx, at: time.Now().Add(h.addWait)}
	}
	margin := min(max(time.Until(d)/10, 20*time.Millisecond), time.Second)
	return due{parent: ctx, at: d.Add(-margin)}
}

// context is the request's context ending when the answer is due, made on
// the first call.
func (d *due) context() context.Context {
	if d.ctx == nil {
		d.ctx, d.cancel = context.WithDeadline(d.parent, d.at)
	}
	return d.ctx
}

// end releases the context, if one was made.
func (d *due) end() {
	if d.cancel != nil {
		d.cancel()
	}
}
