package ipamd

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
)

// Collaborators that may be absent are replaced by these null objects, so
// the code that uses them has no nil checks.

// errNoKube is what the absent API server answers reads with.
var errNoKube = errors.New("ipamd runs without the Kubernetes API server")

// noKube is the API server when there is none: the node is schedulable,
// has no capacity of its own (the instance type's applies), resolves no
// ENIConfig and knows no pod; writes are dropped.
type noKube struct{}

func (noKube) NodeSchedulable(context.Context) (bool, error)               { return true, nil }
func (noKube) MaxPods(context.Context) (int, error)                        { return 0, nil }
func (noKube) ENIConfig(context.Context) (ENIConfig, error)                { return ENIConfig{}, errNoKube }
func (noKube) Pod(context.Context, string, string) (PodInfo, error)        { return PodInfo{}, errNoKube }
func (noKube) PodLive(context.Context, string, string) (PodInfo, error)    { return PodInfo{}, errNoKube }
func (noKube) AnnotatePodIP(context.Context, string, string, string) error { return nil }
func (noKube) ClearPodIP(context.Context, string, string, string) error    { return nil }
func (noKube) DeclareFeature(context.Context, string, string) error        { return errNoKube }
func (noKube) Eventf(context.Context, string, string, string, ...any)      {}

// kubeRef is the one owner of the API server client: absent (noKube) until
// one is known; SetKubernetes sets it once later when ipamd started
// without one.
type kubeRef struct {
	mu    sync.RWMutex
	k     Kubernetes // nil while absent
	track *introspect.Tracker
}

// get is the client, or noKube.
func (r *kubeRef) get() Kubernetes {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.k == nil {
		return noKube{}
	}
	return r.k
}

// present reports whether an API server is known: features that exist
// only with one (security groups for pods, the CNINode) check it.
func (r *kubeRef) present() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.k != nil
}

// set hands over a client once; it reports whether this call set it.
func (r *kubeRef) set(k Kubernetes) bool {
	if k == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.k != nil {
		return false
	}
	r.k = trackedKube{Kubernetes: k, t: r.track}
	return true
}

// noHost programs nothing (the test-only VPC_CNI_DISABLE_HOST_NETWORK
// mode); a trunk's link has index 0.
type noHost struct{}

func (noHost) SetupENI(context.Context, networkutils.ENI) error              { return nil }
func (noHost) TeardownENI(context.Context, netip.Addr, int) error            { return nil }
func (noHost) DeletePodRules(context.Context, ...netip.Addr) error           { return nil }
func (noHost) RestorePodRules(context.Context, []networkutils.PodRule) error { return nil }
func (noHost) LinkByMAC(context.Context, net.HardwareAddr) (networkutils.Link, error) {
	return networkutils.Link{}, nil
}
func (noHost) ReconcileHost(context.Context, networkutils.HostConfig) (networkutils.HostResult, error) {
	return networkutils.HostResult{}, nil
}

// noSubnets has no subnet discovery: only the node's own subnet is used.
type noSubnets struct{}

func (noSubnets) Subnets(context.Context, string, string) ([]awsutils.Subnet, error) {
	return nil, errors.New("ipamd runs without a subnet lister")
}

// noLeaked finds no leaked ENI.
type noLeaked struct{}

func (noLeaked) LeakedENIs(context.Context, string, string) ([]awsutils.ENI, error) { return nil, nil }
