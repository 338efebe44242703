package ipamd

import (
	"context"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
)

// Activity kinds shown in /v1/pool's WaitingOn. EC2 calls are shown by
// awsutils under awsutils.ActivityEC2 ("ec2"), when the tracker is its
// Config.Calls.
const (
	waitIMDS     = "imds"
	waitCooldown = "cooldown"
	waitKube     = "kubernetes"
)

// trackedKube shows every API server request as an activity while it runs.
// It stays a decorator because the Kubernetes client has no per-request
// seam that means "ipamd waits": reads are served from informer caches and
// the informers' watches are HTTP requests that never end, so a transport
// hook would show the watches forever and the cache waits not at all.
type trackedKube struct {
	Kubernetes
	t *introspect.Tracker
}

func (k trackedKube) NodeSchedulable(ctx context.Context) (bool, error) {
	defer k.t.Begin(waitKube, "GET node (taints)")()
	return k.Kubernetes.NodeSchedulable(ctx)
}

func (k trackedKube) MaxPods(ctx context.Context) (int, error) {
	defer k.t.Begin(waitKube, "GET node (capacity)")()
	return k.Kubernetes.MaxPods(ctx)
}

func (k trackedKube) ENIConfig(ctx context.Context) (ENIConfig, error) {
	defer k.t.Begin(waitKube, "GET node + ENIConfig")()
	return k.Kubernetes.ENIConfig(ctx)
}

func (k trackedKube) Pod(ctx context.Context, namespace, name string) (PodInfo, error) {
	defer k.t.Begin(waitKube, "GET pod "+namespace+"/"+name)()
	return k.Kubernetes.Pod(ctx, namespace, name)
}

func (k trackedKube) PodLive(ctx context.Context, namespace, name string) (PodInfo, error) {
	defer k.t.Begin(waitKube, "GET pod "+namespace+"/"+name+" (API server)")()
	return k.Kubernetes.PodLive(ctx, namespace, name)
}

func (k trackedKube) AnnotatePodIP(ctx context.Context, namespace, name, ip string) error {
	defer k.t.Begin(waitKube, "PATCH pod "+namespace+"/"+name)()
	return k.Kubernetes.AnnotatePodIP(ctx, namespace, name, ip)
}

func (k trackedKube) ClearPodIP(ctx context.Context, namespace, name, ip string) error {
	defer k.t.Begin(waitKube, "PATCH pod "+namespace+"/"+name)()
	return k.Kubernetes.ClearPodIP(ctx, namespace, name, ip)
}

func (k trackedKube) DeclareFeature(ctx context.Context, name, value string) error {
	defer k.t.Begin(waitKube, "PATCH CNINode feature "+name)()
	return k.Kubernetes.DeclareFeature(ctx, name, value)
}
