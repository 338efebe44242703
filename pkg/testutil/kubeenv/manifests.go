package kubeenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ReadManifest decodes every object of a multi-document YAML (or JSON) file.
func ReadManifest(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(m) == 0 {
			continue // empty document
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// Apply creates every object of the given manifest files, in order, leaving
// objects that already exist as they are. CRDs are usable once
// WaitForResource sees them served.
func (e *Env) Apply(ctx context.Context, paths ...string) error {
	c, err := client.New(e.Config, client.Options{})
	if err != nil {
		return err
	}
	for _, p := range paths {
		objs, err := ReadManifest(p)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("%s: create %s %s: %w", p, o.GetKind(), o.GetName(), err)
			}
		}
	}
	return nil
}
