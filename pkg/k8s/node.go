package k8s

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
)

// Node returns this node from the cache.
func (c *Client) Node(ctx context.Context) (*corev1.Node, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	n, err := getCached(ctx, c, c.node, nodesRes, "", c.cfg.NodeName, &corev1.Node{})
	if err != nil {
		return nil, fmt.Errorf("get node %q: %w", c.cfg.NodeName, err)
	}
	return n, nil
}

// NodeSchedulable reports false while the node carries the taint
// node.kubernetes.io/unschedulable:NoSchedule (docs/compatibility.md,
// "Kubernetes objects"); ipamd then neither attaches nor frees ENIs/IPs
// unless AWS_MANAGE_ENIS_NON_SCHEDULABLE.
func (c *Client) NodeSchedulable(ctx context.Context) (bool, error) {
	n, err := c.Node(ctx)
	if err != nil {
		return false, err
	}
	for _, t := range n.Spec.Taints {
		if t.Key == corev1.TaintNodeUnschedulable && t.Effect == corev1.TaintEffectNoSchedule {
			return false, nil
		}
	}
	return true, nil
}

// MaxPods returns the node's status.capacity.pods.
func (c *Client) MaxPods(ctx context.Context) (int, error) {
	n, err := c.Node(ctx)
	if err != nil {
		return 0, err
	}
	q, ok := n.Status.Capacity[corev1.ResourcePods]
	if !ok || q.Value() <= 0 {
		return 0, fmt.Errorf("node %q has no status.capacity.pods yet", c.cfg.NodeName)
	}
	return int(q.Value()), nil
}

// ENIConfigChoice is the node's resolved ENIConfig.
type ENIConfigChoice struct {
	Name   string
	Source eniconfig.Source // which node field named it
	Key    string           // the label or annotation key, "" for the default
	Spec   eniconfig.Spec
}

// ENIConfigForNode resolves this node's ENIConfig (docs/compatibility.md,
// "Kubernetes objects") and returns its validated spec. A missing or invalid
// ENIConfig returns an error wrapping ErrENIConfigNotFound or
// ErrENIConfigInvalid and records a Warning event on the aws-node pod; ipamd
// should keep the node not ready and retry, not exit.
func (c *Client) ENIConfigForNode(ctx context.Context) (ENIConfigChoice, error) {
	n, err := c.Node(ctx)
	if err != nil {
		return ENIConfigChoice{}, err
	}
	name, src, key := eniconfig.Resolve(n.Labels, n.Annotations, c.cfg.ENIConfigSelector)
	choice := ENIConfigChoice{Name: name, Source: src, Key: key}
	how := string(src)
	if key != "" {
		how += " " + key
	}
	if err := eniconfig.ValidateName(name); err != nil {
		err = fmt.Errorf("%w: node %q selects ENIConfig by %s: %w", ErrENIConfigNotFound, c.cfg.NodeName, how, err)
		c.Eventf(ctx, corev1.EventTypeWarning, ReasonENIConfigNotFound, "%v", err)
		return choice, err
	}
	ec, err := getCached(ctx, c, c.eniConfigs, eniConfigsRes, "", name, &eniconfig.ENIConfig{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			err = fmt.Errorf("%w: node %q selects ENIConfig %q (by %s), which does not exist", ErrENIConfigNotFound, c.cfg.NodeName, name, how)
			c.Eventf(ctx, corev1.EventTypeWarning, "ENIConfigNotFound", "%v", err)
			return choice, err
		}
		return choice, fmt.Errorf("get ENIConfig %q: %w", name, err)
	}
	if err := eniconfig.Validate(name, ec.Spec); err != nil {
		err = fmt.Errorf("%w: node %q selects ENIConfig %q (by %s): %w", ErrENIConfigInvalid, c.cfg.NodeName, name, how, err)
		c.Eventf(ctx, corev1.EventTypeWarning, "InvalidENIConfig", "%v", err)
		return choice, err
	}
	choice.Spec = ec.Spec
	return choice, nil
}
