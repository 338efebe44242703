package k8s

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The informer caches keep only what ipamd reads, so that a node's pods
// cost ipamd little memory however large their specs are (images, env,
// probes, volumes, container statuses). Everything else a caller needs must
// be added here, or read live.

// trimPod keeps a pod's identity, labels and annotations (the pod-eni
// annotation), node and host networking, each container's name and
// resources (the pod-eni resource), and its phase, addresses and
// conditions.
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: nothing of ours to trim
	}
	t := &corev1.Pod{TypeMeta: p.TypeMeta, ObjectMeta: trimMeta(p.ObjectMeta)}
	t.Spec.NodeName, t.Spec.HostNetwork = p.Spec.NodeName, p.Spec.HostNetwork
	if len(p.Spec.Containers) > 0 {
		t.Spec.Containers = make([]corev1.Container, len(p.Spec.Containers))
		for i, c := range p.Spec.Containers {
			t.Spec.Containers[i] = corev1.Container{Name: c.Name, Resources: c.Resources}
		}
	}
	t.Status = corev1.PodStatus{
		Phase: p.Status.Phase, Conditions: p.Status.Conditions,
		HostIP: p.Status.HostIP, HostIPs: p.Status.HostIPs, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs,
	}
	return t, nil
}

// trimNode keeps the node's metadata and spec (taints) and its capacity
// and allocatable; not its image list, conditions, addresses or volumes.
func trimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil // a tombstone: nothing of ours to trim
	}
	return &corev1.Node{
		TypeMeta: n.TypeMeta, ObjectMeta: trimMeta(n.ObjectMeta), Spec: n.Spec,
		Status: corev1.NodeStatus{Capacity: n.Status.Capacity, Allocatable: n.Status.Allocatable},
	}, nil
}

// trimMeta drops managed fields (large, never read).
func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	m.ManagedFields = nil
	return m
}
