package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// kube adapts *k8s.Client to ipamd.Kubernetes.
type kube struct{ *k8s.Client }

// ENIConfig returns the resolved name even with an error (a missing or
// invalid ENIConfig): introspection shows the name the node selects.
func (k kube) ENIConfig(ctx context.Context) (ipamd.ENIConfig, error) {
	c, err := k.ENIConfigForNode(ctx)
	if err != nil {
		return ipamd.ENIConfig{Name: c.Name}, err
	}
	return ipamd.ENIConfig{Name: c.Name, Subnet: c.Spec.Subnet, SecurityGroups: c.Spec.SecurityGroups}, nil
}

// mirrorAnnotation marks a static pod's mirror with the static pod's UID.
const mirrorAnnotation = "kubernetes.io/config.mirror"

func (k kube) Pod(ctx context.Context, namespace, name string) (ipamd.PodInfo, error) {
	return podInfo(k.Client.Pod(ctx, namespace, name))
}

func (k kube) PodLive(ctx context.Context, namespace, name string) (ipamd.PodInfo, error) {
	return podInfo(k.Client.PodLive(ctx, namespace, name))
}

// podInfo is what ipamd needs of a pod read with err (not found: a
// PodInfo without Found).
func podInfo(p *corev1.Pod, err error) (ipamd.PodInfo, error) {
	if apierrors.IsNotFound(err) {
		return ipamd.PodInfo{}, nil
	}
	if err != nil {
		return ipamd.PodInfo{}, err
	}
	info := ipamd.PodInfo{Found: true, UID: string(p.UID), BranchAnnotation: p.Annotations[ipamd.PodENIAnnotation],
		Deleting: p.DeletionTimestamp != nil, MirrorOf: p.Annotations[mirrorAnnotation]}
	if len(p.Spec.Containers) > 0 {
		for res := range p.Spec.Containers[0].Resources.Limits {
			if strings.HasPrefix(string(res), ipamd.PodENIResource) {
				info.WantsBranchENI = true
			}
		}
	}
	return info, nil
}

func (k kube) DeclareFeature(ctx context.Context, name, value string) error {
	return k.AddCNINodeFeature(ctx, name, value)
}

// connectKube returns the node-scoped Kubernetes client, or nil when ipamd
// runs without an API server: no MY_NODE_NAME, not in a cluster, or not
// reachable within upstream's 30 s while no enabled feature needs it. In
// the last case it also returns the client config to retry in the
// background.
func connectKube(ctx context.Context, cfg config.Config, log *slog.Logger) (ipamd.Kubernetes, *k8s.Config, error) {
	features := k8s.Features{CustomNetworking: cfg.CustomNetworking, PodENI: cfg.EnablePodENI, AnnotatePodIP: cfg.AnnotatePodIP}
	needed := features.CustomNetworking || features.PodENI || features.AnnotatePodIP
	if cfg.NodeName == "" {
		if needed {
			return nil, nil, errors.New("MY_NODE_NAME is empty but custom networking, ENABLE_POD_ENI or ANNOTATE_POD_IP needs the node's name")
		}
		log.Info("MY_NODE_NAME is not set: running without the Kubernetes API server")
		return nil, nil, nil
	}
	rc, err := k8s.RESTConfig(k8s.RESTOptions{Kubeconfig: cfg.Kubeconfig, ClusterEndpoint: cfg.ClusterEndpoint, Version: cfg.Version})
	if err != nil {
		if needed {
			return nil, nil, err
		}
		log.Info("no Kubernetes client configuration: running without the API server", "err", err)
		return nil, nil, nil
	}
	kcfg := k8s.Config{
		RESTConfig: rc, NodeName: cfg.NodeName, PodName: cfg.PodName, Features: features,
		ENIConfigSelector: eniconfig.Selector{LabelKey: cfg.ENIConfigLabelDef, AnnotationKey: cfg.ENIConfigAnnotationDef},
		Logger:            log.With("component", "k8s"),
	}
	c, err := k8s.Connect(ctx, kcfg)
	if errors.Is(err, k8s.ErrAPIServerUnavailable) && !needed {
		log.Warn("Kubernetes API server unreachable: running without it and retrying in the background", "err", err)
		return nil, &kcfg, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes: %w", err)
	}
	return kube{c}, nil, nil
}
