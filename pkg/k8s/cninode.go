package k8s

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

// AddCNINodeFeature declares feature name=value on this node's CNINode
// (docs/compatibility.md, "Kubernetes objects"): no change if present with
// the same value, replaced if present with another, appended otherwise. The
// merge patch carries the resourceVersion read, so a concurrent writer makes
// it fail with Conflict instead of being overwritten; it then re-reads from
// the API server and retries. A missing CNINode (the resource controller has
// not created it yet) returns ErrCNINodeNotFound.
func (c *Client) AddCNINodeFeature(ctx context.Context, name, value string) error {
	cache := c.cniNode // the first read only: a retry must see the server's state
	changed := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := getCached(ctx, c, cache, cniNodesRes, "", c.cfg.NodeName, &CNINode{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("%w: %q (created by the VPC resource controller)", ErrCNINodeNotFound, c.cfg.NodeName)
			}
			return fmt.Errorf("get CNINode %q: %w", c.cfg.NodeName, err)
		}
		cache = nil
		want, ok := withFeature(cur.Spec.Features, name, value)
		if !ok {
			return nil
		}
		if c.beforeFeaturePatch != nil {
			c.beforeFeaturePatch()
		}
		// The resourceVersion makes the merge patch fail with Conflict if
		// the object changed since the read (an optimistic lock).
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": cur.ResourceVersion},
			"spec":     map[string]any{"features": want},
		})
		if err != nil {
			return err
		}
		if err := c.api.patch(ctx, cniNodesRes, "", c.cfg.NodeName, types.MergePatchType, patch); err != nil {
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
