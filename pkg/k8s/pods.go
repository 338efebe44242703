package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// PodIPsAnnotation is written on ADD when ANNOTATE_POD_IP is on.
const PodIPsAnnotation = "vpc.amazonaws.com/pod-ips"

// Pod returns a pod scheduled on this node from the cache. Pods of other
// nodes are not cached and yield a NotFound error.
func (c *Client) Pod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	p, err := getCached(ctx, c, c.pods, podsRes, namespace, name, &corev1.Pod{})
	if err != nil {
		return nil, fmt.Errorf("get pod %s/%s: %w", namespace, name, err)
	}
	return p, nil
}

// PodLive reads a pod from the API server, not the cache: for when the
// cache may lag (a stalled watch) and the caller knows what it expects.
func (c *Client) PodLive(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	p := &corev1.Pod{}
	if err := c.api.get(ctx, podsRes, namespace, name, p); err != nil {
		return nil, fmt.Errorf("get pod %s/%s from the API server: %w", namespace, name, err)
	}
	return p, nil
}

// Pods returns the pods scheduled on this node, from the cache.
func (c *Client) Pods(ctx context.Context) ([]corev1.Pod, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	objs := c.pods.list()
	pods := make([]corev1.Pod, 0, len(objs))
	for _, o := range objs {
		pods = append(pods, *o.(*corev1.Pod))
	}
	return pods, nil
}

// AnnotatePodIP sets vpc.amazonaws.com/pod-ips to ip on the pod (ADD). It
// patches by name without reading first: the cache may not have seen a pod
// that is only now being wired.
func (c *Client) AnnotatePodIP(ctx context.Context, namespace, name, ip string) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{PodIPsAnnotation: ip}},
	})
	if err != nil {
		return err
	}
	if err := c.api.patch(ctx, podsRes, namespace, name, types.MergePatchType, patch); err != nil {
		return fmt.Errorf("annotate pod %s/%s with %s=%s: %w", namespace, name, PodIPsAnnotation, ip, err)
	}
	return nil
}

// ClearPodIP sets the annotation to "" on DEL, but only if it still holds
// releasedIP: a JSON patch "test" makes the check and the write one atomic
// step on the server, so a newer ADD's value is never wiped. A pod that is
// gone or carries another value is left alone (nil error).
func (c *Client) ClearPodIP(ctx context.Context, namespace, name, releasedIP string) error {
	path := "/metadata/annotations/" + strings.ReplaceAll(strings.ReplaceAll(PodIPsAnnotation, "~", "~0"), "/", "~1")
	patch, err := json.Marshal([]map[string]string{
		{"op": "test", "path": path, "value": releasedIP},
		{"op": "replace", "path": path, "value": ""},
	})
	if err != nil {
		return err
	}
	err = c.api.patch(ctx, podsRes, namespace, name, types.JSONPatchType, patch)
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsInvalid(err):
		// 422 from the "test" op: the annotation is absent or holds another IP.
		return nil
	default:
		return fmt.Errorf("clear %s on pod %s/%s: %w", PodIPsAnnotation, namespace, name, err)
	}
}
