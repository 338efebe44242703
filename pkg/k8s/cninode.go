package k8s

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// AddCNINodeFeature declares feature name=value on this node's CNINode
// (docs/compatibility.md, "Kubernetes objects"): no change if present with
// the same value, replaced if present with another, appended otherwise. The
// merge patch carries the resourceVersion read, so a concurrent writer makes
// it fail with Conflict instead of being overwritten; it then re-reads from
// the API server and retries. A missing CNINode (the resource controller has
// not created it yet) returns ErrCNINodeNotFound.
func (c *Client) AddCNINodeFeature(ctx context.Context, name, value string) error {
	key := client.ObjectKey{Name: c.cfg.NodeName}
	reader := c.reader(&CNINode{})
	if c.ready() != nil {
		reader = c.direct
	}
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var cur CNINode
		if err := reader.Get(ctx, key, &cur); err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("%w: %q (created by the VPC resource controller)", ErrCNINodeNotFound, c.cfg.NodeName)
			}
			return fmt.Errorf("get CNINode %q: %w", c.cfg.NodeName, err)
		}
		// Any retry reads live: the cache may still hold the stale version.
		reader = c.direct
		want, ok := withFeature(cur.Spec.Features, name, value)
		if !ok {
			return nil
		}
		if c.beforeFeaturePatch != nil {
			c.beforeFeaturePatch()
		}
		next := cur.DeepCopy()
		next.Spec.Features = want
		if err := c.client.Patch(ctx, next, client.MergeFromWithOptions(&cur, client.MergeFromWithOptimisticLock{})); err != nil {
			return err
		}
		changed = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("add feature %s=%q to CNINode %q: %w", name, value, c.cfg.NodeName, err)
	}
	if changed {
		c.log.Info("declared CNINode feature", "cninode", c.cfg.NodeName, "feature", name, "value", value)
	}
	return nil
}

// withFeature returns features with name=value set, and whether that differs
// from the input. Other features keep their order.
func withFeature(features []CNINodeFeature, name, value string) ([]CNINodeFeature, bool) {
	out := make([]CNINodeFeature, 0, len(features)+1)
	found, changed := false, false
	for _, f := range features {
		if f.Name == name {
			if found {
				changed = true // drop duplicates of the same name
				continue
			}
			found = true
			if f.Value != value {
				f.Value, changed = value, true
			}
		}
		out = append(out, f)
	}
	if !found {
		out = append(out, CNINodeFeature{Name: name, Value: value})
		changed = true
	}
	return out, changed
}
