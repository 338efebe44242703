package ipamd

import (
	"time"
)

// goneENI is an ENI whose assign EC2 answered NotFound: deleted behind
// ipamd's back (a user, another tool), though the store still lists it
// until a reconcile drops it. Growth passes over it (pool.Params
// AssignSkipped) rather than pausing assigns on every ENI, which left
// ADDs waiting for the next periodic reconcile (a minute). The skip
// doubles per ENI like a failure's pause: if EC2 answered NotFound only
// for a moment (its reads are eventually consistent), the ENI serves
// again after it; if the reconcile cannot drop it (instance metadata
// still lists it), it is not asked again every cycle.
type goneENI struct {
	failures int
	until    time.Time
}

// noteGone passes over eniID for growth after an assign there answered
// NotFound, and asks for a reconcile now, which drops it from the store.
func (c *poolManager) noteGone(eniID string, err error) {
	c.mu.Lock()
	if c.gone == nil {
		c.gone = map[string]goneENI{}
	}
	g := c.gone[eniID]
	g.failures++
	g.until = time.Now().Add(min(c.backoff<<min(g.failures-1, 10), time.Minute))
	c.gone[eniID] = g
	c.mu.Unlock()
	c.env.log.Warn("EC2 does not know an ENI the pool assigns to (deleted behind ipamd's back?); growing elsewhere and reconciling",
		"eni", eniID, "card", c.index, "skipUntil", g.until, "err", err)
	if c.env.reconcile != nil {
		c.env.reconcile()
	}
}

// assignWorked ends eniID's skip: EC2 knows it after all.
func (c *poolManager) assignWorked(eniID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.gone, eniID)
}

// assignSkipped lists the ENIs growth passes over now; an ENI the store
// no longer holds (the reconcile dropped it) is forgotten.
func (c *poolManager) assignSkipped(now time.Time) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out map[string]bool
	for id, g := range c.gone {
		if _, ok := c.store.ENI(id); !ok {
			delete(c.gone, id)
			continue
		}
		if now.Before(g.until) {
			if out == nil {
				out = map[string]bool{}
			}
			out[id] = true
		}
	}
	return out
}
