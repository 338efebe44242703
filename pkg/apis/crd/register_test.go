package crd

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestRegisterAddsTheTypes(t *testing.T) {
	gv := schema.GroupVersion{Group: "example.test", Version: "v1"}
	s := runtime.NewScheme()
	if err := Register(gv, &metav1.PartialObjectMetadata{})(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"PartialObjectMetadata", "ListOptions", "DeleteOptions"} {
		if !s.Recognizes(gv.WithKind(kind)) {
			t.Errorf("scheme does not recognise %s", gv.WithKind(kind))
		}
	}
}
