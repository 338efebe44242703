package k8s

import (
	"maps"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/vpc-cni/vpc-cni/pkg/apis/crd"
)

// CNINodeGroupVersion is the VPC resource controller's API (misc/crd-cninode.yaml).
var CNINodeGroupVersion = schema.GroupVersion{Group: "vpcresources.k8s.aws", Version: "v1alpha1"}

// Feature names ipamd declares on its CNINode.
const (
	FeatureSecurityGroupsForPods = "SecurityGroupsForPods"
	FeatureCustomNetworking      = "CustomNetworking"
)

// CNINode is the cluster-scoped per-node object (name = node name) created by
// the VPC resource controller.
type CNINode struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              CNINodeSpec `json:"spec,omitempty"`
}

// CNINodeSpec lists the declared features. Status is owned by the controller
// and not modelled: merge patches only carry the fields we change.
type CNINodeSpec struct {
	Features []CNINodeFeature  `json:"features,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
}

// CNINodeFeature is one declared feature, e.g. {CustomNetworking, <ENIConfig>}.
type CNINodeFeature struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// CNINodeList is a list of CNINodes.
type CNINodeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CNINode `json:"items"`
}

var addCNINodeToScheme = crd.Register(CNINodeGroupVersion, &CNINode{}, &CNINodeList{})

// DeepCopyInto copies in into out.
func (in *CNINode) DeepCopyInto(out *CNINode) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if in.Spec.Features != nil {
		out.Spec.Features = append([]CNINodeFeature(nil), in.Spec.Features...)
	}
	out.Spec.Tags = maps.Clone(in.Spec.Tags)
}

// DeepCopy returns a deep copy.
func (in *CNINode) DeepCopy() *CNINode { return crd.Of(in) }

// DeepCopyObject implements runtime.Object.
func (in *CNINode) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (in *CNINodeList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	return crd.Of(in)
}

// DeepCopyInto copies in into out.
func (in *CNINodeList) DeepCopyInto(out *CNINodeList) {
	*out = *in
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = crd.Items(in.Items)
}
