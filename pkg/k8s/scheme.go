package k8s

import (
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
)

// NewScheme returns a scheme with exactly the types ipamd reads or writes.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme,
		eventsv1.AddToScheme,
		eniconfig.AddToScheme,
		addCNINodeToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newRESTMapper maps exactly the kinds in NewScheme, without discovery.
func newRESTMapper() meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	m.Add(corev1.SchemeGroupVersion.WithKind("Node"), meta.RESTScopeRoot)
	m.Add(corev1.SchemeGroupVersion.WithKind("Pod"), meta.RESTScopeNamespace)
	m.Add(eventsv1.SchemeGroupVersion.WithKind("Event"), meta.RESTScopeNamespace)
	m.Add(eniconfig.GroupVersion.WithKind("ENIConfig"), meta.RESTScopeRoot)
	m.Add(CNINodeGroupVersion.WithKind("CNINode"), meta.RESTScopeRoot)
	return m
}
