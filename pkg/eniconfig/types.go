// Package eniconfig holds the ENIConfig custom resource
// (crd.k8s.amazonaws.com/v1alpha1) used by custom networking, the rule that
// picks a node's ENIConfig, and validation of its spec.
package eniconfig

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/vpc-cni/vpc-cni/pkg/apis/crd"
)

// GroupVersion of the ENIConfig CRD (misc/crd-eniconfig.yaml).
var GroupVersion = schema.GroupVersion{Group: "crd.k8s.amazonaws.com", Version: "v1alpha1"}

// AddToScheme registers ENIConfig and ENIConfigList.
var AddToScheme = crd.Register(GroupVersion, &ENIConfig{}, &ENIConfigList{})

// ENIConfig names the subnet and security groups of the pod ENIs of the
// nodes that select it. Cluster-scoped.
type ENIConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   Spec   `json:"spec,omitempty"`
	Status Status `json:"status,omitempty"`
}

// Spec is the user-facing part of an ENIConfig.
type Spec struct {
	// SecurityGroups for new ENIs; empty means the node's primary ENI groups.
	SecurityGroups []string `json:"securityGroups,omitempty"`
	// Subnet in which new ENIs are created (required).
	Subnet string `json:"subnet"`
}

// Status is unused; kept so objects written by other tools round-trip.
type Status struct{}

// ENIConfigList is a list of ENIConfigs.
type ENIConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ENIConfig `json:"items"`
}

// DeepCopyInto copies in into out.
func (in *Spec) DeepCopyInto(out *Spec) {
	*out = *in
	if in.SecurityGroups != nil {
		out.SecurityGroups = append([]string(nil), in.SecurityGroups...)
	}
}

// DeepCopyInto copies in into out.
func (in *ENIConfig) DeepCopyInto(out *ENIConfig) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
}

// DeepCopy returns a deep copy.
func (in *ENIConfig) DeepCopy() *ENIConfig { return crd.Of(in) }

// DeepCopyObject implements runtime.Object.
func (in *ENIConfig) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyInto copies in into out.
func (in *ENIConfigList) DeepCopyInto(out *ENIConfigList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = crd.Items(in.Items)
}

// DeepCopy returns a deep copy.
func (in *ENIConfigList) DeepCopy() *ENIConfigList { return crd.Of(in) }

// DeepCopyObject implements runtime.Object.
func (in *ENIConfigList) DeepCopyObject() runtime.Object { return in.DeepCopy() }
