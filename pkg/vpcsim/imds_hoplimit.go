package vpcsim

import (
	"context"
	"net/http"
)

// ConnTTLSetter sets the IP TTL (the hop limit, for IPv6) of every packet
// the connection a request arrived on sends from now on.
type ConnTTLSetter func(ttl int) error

type connTTLKey struct{}

// WithConnTTLSetter returns ctx carrying set. A server whose connections
// cross real hops (the local VPC's data plane) puts one in each connection's
// context (http.Server.ConnContext) so IMDS can send its token answers with
// the instance's hop limit as their TTL, as EC2 does: a caller more hops
// away than that never sees the token.
func WithConnTTLSetter(ctx context.Context, set ConnTTLSetter) context.Context {
	return context.WithValue(ctx, connTTLKey{}, set)
}

func connTTLSetter(ctx context.Context) ConnTTLSetter {
	set, _ := ctx.Value(connTTLKey{}).(ConnTTLSetter)
	return set
}

// imdsHopLimit is the instance's HttpPutResponseHopLimit as EC2 holds it
// now: the limit is applied where the answer leaves, not through the lagging
// metadata view.
func (s *Sim) imdsHopLimit(instanceID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in, ok := s.w.instances[instanceID]; ok && in.imdsHopLimit > 0 {
		return in.imdsHopLimit
	}
	return defaultIMDSHopLimit
}

// limitTokenHops makes the token answer on this connection leave with the
// instance's hop limit as its TTL. The TTL stays on the socket (a
// retransmission must carry it too), so the connection serves nothing more.
func (s *Sim) limitTokenHops(w http.ResponseWriter, r *http.Request, instanceID string) error {
	set := connTTLSetter(r.Context())
	if set == nil {
		return nil // a plain HTTP server: no hops to count
	}
	if err := set(s.imdsHopLimit(instanceID)); err != nil {
		return err
	}
	w.Header().Set("Connection", "close")
	return nil
}
