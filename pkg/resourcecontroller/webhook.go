package resourcecontroller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// WebhookPath is where the pod mutating webhook is served
// (misc/vpc-resource-controller.yaml registers it as mpod.vpc.k8s.aws).
const WebhookPath = "/mutate-v1-pod"

// podMutator gives pods a SecurityGroupPolicy selects a vpc.amazonaws.com/pod-eni
// request and limit of 1 on their first container, so that the scheduler
// places them only on nodes with branch capacity.
type podMutator struct{ c *Controller }

func (h podMutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create {
		return admission.Allowed("")
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	if pod.Spec.HostNetwork || isWindows(&pod) || len(pod.Spec.Containers) == 0 {
		return admission.Allowed("")
	}
	if _, ok := pod.Annotations[PodENIAnnotation]; ok {
		return admission.Denied(fmt.Sprintf("pod %s/%s cannot be created with the %s annotation: the VPC resource controller writes it", pod.Namespace, podName(&pod), PodENIAnnotation))
	}
	m, err := h.c.match(ctx, &pod)
	if err != nil {
		return admission.Denied(fmt.Sprintf("Failed to get Matching SGP for Pods, rejecting event, error %v", err))
	}
	// Unusable policies select nothing: tell whoever creates the pod
	// (kubectl prints admission warnings).
	var warnings []string
	for _, inv := range m.Invalid {
		warnings = append(warnings, fmt.Sprintf("SecurityGroupPolicy %s/%s (ignored: it selects no pod)", pod.Namespace, inv))
	}
	if len(m.Groups) == 0 {
		return admission.Allowed("").WithWarnings(warnings...)
	}
	if err := CheckGroups(m, h.c.cfg.MaxGroupsPerENI); err != nil {
		return admission.Denied(fmt.Sprintf("pod %s/%s: %v", pod.Namespace, podName(&pod), err))
	}
	patch, err := podENIPatch(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	resp := admission.Allowed("").WithWarnings(warnings...)
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	return resp
}

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// podENIPatch adds a pod-eni request and limit of 1 to the first container
// of the raw pod, and nothing else. It is built from the raw object, not by
// diffing a re-encoded pod: fields this controller's API types do not know
// (a newer API server's) would show up in such a diff as removed.
func podENIPatch(raw []byte) ([]byte, error) {
	var pod struct {
		Spec struct {
			Containers []map[string]json.RawMessage `json:"containers"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &pod); err != nil {
		return nil, fmt.Errorf("decoding the pod's containers: %w", err)
	}
	if len(pod.Spec.Containers) == 0 {
		return nil, fmt.Errorf("the pod has no container")
	}
	const base = "/spec/containers/0/resources"
	key := strings.ReplaceAll(strings.ReplaceAll(PodENIResource, "~", "~0"), "/", "~1")
	var res map[string]json.RawMessage
	if r, ok := pod.Spec.Containers[0]["resources"]; ok {
		_ = json.Unmarshal(r, &res) // null or not an object: replaced whole
	}
	var ops []patchOp
	if res == nil {
		ops = append(ops, patchOp{Op: "add", Path: base, Value: map[string]any{
			"requests": map[string]string{PodENIResource: "1"},
			"limits":   map[string]string{PodENIResource: "1"},
		}})
	} else {
		for _, field := range []string{"requests", "limits"} {
			var list map[string]json.RawMessage
			if v, ok := res[field]; ok {
				_ = json.Unmarshal(v, &list)
			}
			if list == nil {
				ops = append(ops, patchOp{Op: "add", Path: base + "/" + field, Value: map[string]string{PodENIResource: "1"}})
			} else {
				ops = append(ops, patchOp{Op: "add", Path: base + "/" + field + "/" + key, Value: "1"})
			}
		}
	}
	return json.Marshal(ops)
}

func isWindows(p *corev1.Pod) bool {
	return p.Spec.NodeSelector["kubernetes.io/os"] == "windows" || p.Spec.NodeSelector["beta.kubernetes.io/os"] == "windows"
}

func podName(p *corev1.Pod) string {
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "*"
}
