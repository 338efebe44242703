// Package ipamclient is the aws-cni plugin's gRPC client: unary calls to
// ipamd, the network policy agent and the gRPC health service over a unix
// socket. It speaks just enough HTTP/2 and proto3 for those calls, so the
// plugin, which runs once per pod on the critical path, starts without
// grpc-go's and protobuf's package initialisation. What goes on the wire is
// what grpc-go sends (docs/compatibility.md, "gRPC between plugin and
// ipamd"); the tests check it against grpc-go's server.
package ipamclient

import (
	"context"
	"math/rand/v2"
	"time"
)

// DefaultMaxReceiveSize is grpc-go's default limit on a received message.
const DefaultMaxReceiveSize = 4 << 20

// Client calls one socket. Each call uses its own connection, closed when
// the call returns: the plugin makes one call per run, rarely two.
type Client struct {
	// Socket is the unix socket's path.
	Socket string
	// WaitForReady makes a call wait, until its context ends, for the
	// server to accept connections; otherwise a refused connection fails
	// the call at once with Unavailable. These are grpc-go's fail-fast
	// and WaitForReady(true).
	WaitForReady bool
	// MaxReceiveSize bounds a reply message; 0 means DefaultMaxReceiveSize.
	MaxReceiveSize int
}

func (c *Client) maxRecv() int {
	if c.MaxReceiveSize > 0 {
		return c.MaxReceiveSize
	}
	return DefaultMaxReceiveSize
}

// Full method names on the wire (rpc/rpc.proto).
const (
	methodAddNetwork     = "/rpc.CNIBackend/AddNetwork"
	methodDelNetwork     = "/rpc.CNIBackend/DelNetwork"
	methodEnforceNpToPod = "/rpc.NPBackend/EnforceNpToPod"
	methodDeletePodNp    = "/rpc.NPBackend/DeletePodNp"
	methodHealthCheck    = "/grpc.health.v1.Health/Check"
)

// AddNetwork asks ipamd for a pod's addresses. The trailer carries ipamd's
// cause of a Success=false reply.
func (c *Client) AddNetwork(ctx context.Context, req *AddNetworkRequest) (*AddNetworkReply, Metadata, error) {
	return c.StartAddNetwork(ctx, req).Wait()
}

// PendingAdd is an AddNetwork request sent to ipamd; Wait reads the answer.
type PendingAdd struct{ p *pending }

// StartAddNetwork connects and sends the request without waiting for the
// answer, so the caller can work while ipamd answers: the plugin makes
// the pod's veth pair meanwhile, on the same thread. The caller must call
// Wait, which reports any failure of the sending too.
func (c *Client) StartAddNetwork(ctx context.Context, req *AddNetworkRequest) *PendingAdd {
	return &PendingAdd{c.start(ctx, methodAddNetwork, req.marshal(), req.metadata())}
}

// Wait returns ipamd's answer, as AddNetwork does, and closes the
// connection.
func (a *PendingAdd) Wait() (*AddNetworkReply, Metadata, error) {
	b, md, err := a.p.wait()
	if err != nil {
		return nil, md, err
	}
	reply := &AddNetworkReply{}
	if err := reply.unmarshal(b); err != nil {
		return nil, md, unmarshalError(err)
	}
	return reply, md, nil
}

// DelNetwork releases a pod's addresses.
func (c *Client) DelNetwork(ctx context.Context, req *DelNetworkRequest) (*DelNetworkReply, error) {
	return c.StartDelNetwork(ctx, req).Wait()
}

// PendingDel is a DelNetwork request sent to ipamd; Wait reads the answer.
type PendingDel struct{ p *pending }

// StartDelNetwork sends the request without waiting for the answer, as
// StartAddNetwork does: the plugin removes the pod's host routes meanwhile.
// The caller must call Wait.
func (c *Client) StartDelNetwork(ctx context.Context, req *DelNetworkRequest) *PendingDel {
	return &PendingDel{c.start(ctx, methodDelNetwork, req.marshal(), nil)}
}

// Wait returns ipamd's answer, as DelNetwork does, and closes the
// connection.
func (d *PendingDel) Wait() (*DelNetworkReply, error) {
	b, _, err := d.p.wait()
	if err != nil {
		return nil, err
	}
	reply := &DelNetworkReply{}
	if err := reply.unmarshal(b); err != nil {
		return nil, unmarshalError(err)
	}
	return reply, nil
}

// EnforceNpToPod asks the network policy agent to apply a pod's policies
// and returns the reply's success field.
func (c *Client) EnforceNpToPod(ctx context.Context, req *EnforceNpRequest) (bool, error) {
	return c.successCall(ctx, methodEnforceNpToPod, req.marshal())
}

// DeletePodNp tells the network policy agent a pod is gone and returns the
// reply's success field.
func (c *Client) DeletePodNp(ctx context.Context, req *DeleteNpRequest) (bool, error) {
	return c.successCall(ctx, methodDeletePodNp, req.marshal())
}

func (c *Client) successCall(ctx context.Context, method string, req []byte) (bool, error) {
	b, _, err := c.invoke(ctx, method, req)
	if err != nil {
		return false, err
	}
	var reply successReply
	if err := reply.unmarshal(b); err != nil {
		return false, unmarshalError(err)
	}
	return reply.Success, nil
}

// Check asks the standard gRPC health service about service ("" for the
// server as a whole).
func (c *Client) Check(ctx context.Context, service string) (HealthStatus, error) {
	b, _, err := c.invoke(ctx, methodHealthCheck, (&healthRequest{Service: service}).marshal())
	if err != nil {
		return HealthUnknown, err
	}
	var reply healthReply
	if err := reply.unmarshal(b); err != nil {
		return HealthUnknown, unmarshalError(err)
	}
	return reply.Status, nil
}

func unmarshalError(err error) *Status {
	return statusf(Internal, "grpc: failed to unmarshal the received message: %v", err)
}

// backoff spaces wait-for-ready connection attempts as grpc-go's default
// does: 1 s, growing 1.6 times per attempt up to 120 s, each ±20 %.
type backoff struct {
	attempt int
}

func (b *backoff) next() time.Duration {
	d := float64(time.Second)
	for i := 0; i < b.attempt && d < float64(120*time.Second); i++ {
		d *= 1.6
	}
	b.attempt++
	d = min(d, float64(120*time.Second))
	d *= 1 + 0.2*(rand.Float64()*2-1)
	return time.Duration(d)
}
