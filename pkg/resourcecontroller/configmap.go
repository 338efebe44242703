package resourcecontroller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The cluster's CNI ConfigMap, the only one the controller reads, and its
// key for the branch cool-down (docs/compatibility.md, "Security groups for
// pods").
const (
	ConfigMapNamespace = "kube-system"
	ConfigMapName      = "amazon-vpc-cni"
	CooldownKey        = "branch-eni-cooldown"
	// MinCooldown: a shorter branch-eni-cooldown is read as this
	// (Config.CooldownFloor's default).
	MinCooldown = 30 * time.Second
	// ReasonCooldownUpdated is the event every Node gets when the
	// cool-down changes (EKS's reason).
	ReasonCooldownUpdated = "BranchENICoolDownPeriodUpdated"
)

// ParseCooldown reads a branch-eni-cooldown value: whole seconds, at least
// floor. An error means the caller keeps the cool-down it has, as EKS does
// for an unparsable value.
func ParseCooldown(raw string, floor time.Duration) (time.Duration, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	// Seconds past what a Duration holds would wrap (to a negative, read
	// as the floor): a huge cool-down is as long as one can be.
	const maxSeconds = math.MaxInt64 / int64(time.Second)
	if errors.Is(err, strconv.ErrRange) && n > 0 || err == nil && n > maxSeconds {
		return time.Duration(math.MaxInt64), nil
	}
	if err != nil {
		return 0, fmt.Errorf("ConfigMap %s/%s key %s=%q is not a whole number of seconds: %w", ConfigMapNamespace, ConfigMapName, CooldownKey, raw, err)
	}
	d := time.Duration(n) * time.Second
	if n < 0 || d < floor {
		return floor, nil
	}
	return d, nil
}

// cooldown is the cool-down in force; the ConfigMap reconciler is its only
// writer.
type cooldown struct{ ns atomic.Int64 }

func newCooldown(d time.Duration) *cooldown {
	c := &cooldown{}
	c.ns.Store(int64(d))
	return c
}

func (c *cooldown) get() time.Duration { return time.Duration(c.ns.Load()) }

// reconcileConfigMap applies the ConfigMap's branch-eni-cooldown. A missing
// ConfigMap or key, or a bad value (logged), keeps the cool-down in force.
// A change applies to branches already queued and is announced on every
// Node.
func (c *Controller) reconcileConfigMap(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.Namespace != ConfigMapNamespace || req.Name != ConfigMapName {
		return reconcile.Result{}, nil
	}
	var cm corev1.ConfigMap
	if err := c.c.Get(ctx, req.NamespacedName, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading ConfigMap %s: %w", req, err)
	}
	raw, ok := cm.Data[CooldownKey]
	if !ok {
		return reconcile.Result{}, nil
	}
	d, err := ParseCooldown(raw, c.cfg.CooldownFloor)
	if err != nil {
		c.cfg.Log.Warn("keeping the branch ENI cool-down", "cooldown", c.cooldown.get(), "err", err)
		return reconcile.Result{}, nil
	}
	if old := time.Duration(c.cooldown.ns.Swap(int64(d))); old == d {
		return reconcile.Result{}, nil
	}
	var nodes corev1.NodeList
	if err := c.c.List(ctx, &nodes); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing nodes to announce the cool-down: %w", err)
	}
	for i := range nodes.Items {
		c.rec.event(ctx, &nodes.Items[i], "Node", corev1.EventTypeNormal, ReasonCooldownUpdated, "Branch ENI cool down period has been updated to %s", d)
	}
	return reconcile.Result{}, nil
}
