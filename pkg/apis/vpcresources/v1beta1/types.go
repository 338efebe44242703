// Package v1beta1 is the SecurityGroupPolicy API (vpcresources.k8s.aws/v1beta1,
// misc/crd-securitygrouppolicy.yaml), wire-compatible with EKS's: pods that a
// policy selects get a branch ENI with the policy's security groups.
package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/vpc-cni/vpc-cni/pkg/apis/crd"
)

// GroupVersion is vpcresources.k8s.aws/v1beta1.
var GroupVersion = schema.GroupVersion{Group: "vpcresources.k8s.aws", Version: "v1beta1"}

// SecurityGroupPolicy selects pods (by their labels, by their service
// account's labels, or both) and names the groups their branch ENIs get.
type SecurityGroupPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              SecurityGroupPolicySpec `json:"spec,omitempty"`
}

// SecurityGroupPolicySpec: a nil selector is not evaluated; an empty one
// matches everything; when both are set both must match.
type SecurityGroupPolicySpec struct {
	PodSelector            *metav1.LabelSelector `json:"podSelector,omitempty"`
	ServiceAccountSelector *metav1.LabelSelector `json:"serviceAccountSelector,omitempty"`
	SecurityGroups         GroupIDs              `json:"securityGroups,omitempty"`
}

// GroupIDs lists EC2 security group ids.
type GroupIDs struct {
	Groups []string `json:"groupIds,omitempty"`
}

// SecurityGroupPolicyList is a list of policies.
type SecurityGroupPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecurityGroupPolicy `json:"items"`
}

// AddToScheme registers the types.
var AddToScheme = crd.Register(GroupVersion, &SecurityGroupPolicy{}, &SecurityGroupPolicyList{})

// DeepCopyInto copies in into out.
func (in *SecurityGroupPolicy) DeepCopyInto(out *SecurityGroupPolicy) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec.PodSelector != nil {
		out.Spec.PodSelector = in.Spec.PodSelector.DeepCopy()
	}
	if in.Spec.ServiceAccountSelector != nil {
		out.Spec.ServiceAccountSelector = in.Spec.ServiceAccountSelector.DeepCopy()
	}
	if in.Spec.SecurityGroups.Groups != nil {
		out.Spec.SecurityGroups.Groups = append([]string(nil), in.Spec.SecurityGroups.Groups...)
	}
}

// DeepCopy returns a deep copy.
func (in *SecurityGroupPolicy) DeepCopy() *SecurityGroupPolicy { return crd.Of(in) }

// DeepCopyObject implements runtime.Object.
func (in *SecurityGroupPolicy) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *SecurityGroupPolicyList) DeepCopyInto(out *SecurityGroupPolicyList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = crd.Items(in.Items)
}

// DeepCopy returns a deep copy.
func (in *SecurityGroupPolicyList) DeepCopy() *SecurityGroupPolicyList { return crd.Of(in) }

// DeepCopyObject implements runtime.Object.
func (in *SecurityGroupPolicyList) DeepCopyObject() runtime.Object { return in.DeepCopy() }
