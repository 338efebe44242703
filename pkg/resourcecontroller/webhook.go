package resourcecontroller

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
	if len(m.Groups) == 0 {
		return admission.Allowed("")
	}
	if err := CheckGroups(m, h.c.cfg.MaxGroupsPerENI); err != nil {
		return admission.Denied(fmt.Sprintf("pod %s/%s: %v", pod.Namespace, podName(&pod), err))
	}
	mutated := pod.DeepCopy()
	ctr := &mutated.Spec.Containers[0]
	one := resource.MustParse("1")
	if ctr.Resources.Requests == nil {
		ctr.Resources.Requests = corev1.ResourceList{}
	}
	if ctr.Resources.Limits == nil {
		ctr.Resources.Limits = corev1.ResourceList{}
	}
	ctr.Resources.Requests[PodENIResource] = one
	ctr.Resources.Limits[PodENIResource] = one
	raw, err := json.Marshal(mutated)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, raw)
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
