package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
)

// ErrNotInitialised is returned while Init has not completed.
var ErrNotInitialised = errors.New("ipamd: node not initialised yet")

// Init learns the instance, programs host networking, loads every managed
// ENI with EC2's view of its addresses, restores the checkpoint and marks
// the node ready. It is the upstream nodeInit, minus the parts that belong
// to the pool manager (which Run starts right after).
func (n *IPAM) Init(ctx context.Context) (err error) {
	defer n.observe.inProgress(fnNodeInit)()
	start := time.Now()
	defer func() {
		n.metrics.NodeInitDuration.WithLabelValues(strconv.FormatBool(err == nil)).Observe(time.Since(start).Seconds())
		if err != nil {
			n.metrics.IPAMDErrors.WithLabelValues(fnNodeInit).Inc()
		}
	}()
	seen, err := n.node.learn(ctx, n.cfg, n.md, n.ec2, n.log)
	if err != nil {
		return err
	}
	id, typ, subnetCIDRs := n.node.id, n.node.typ, seen.subnetCIDRs
	n.node.maxPods.set(maxPods(ctx, n.cfg, n.kube.get(), typ, n.log))

	// The EC2 calls that do not depend on each other run beside the host
	// programming; ready waits for all of them.
	swept := make(chan error, 1)
	go func() { swept <- n.leaked.atStart(ctx) }()
	listed := make(chan []awsutils.Subnet, 1)
	go func() { listed <- n.discoverSubnets(ctx) }()
	hostErr := n.hostSync.programAtStart(ctx)
	if err := <-swept; err != nil {
		// Not fatal: the periodic sweep retries.
		n.log.Warn("could not sweep unattached ENIs at start", "err", err)
	}
	subs := <-listed
	if hostErr != nil {
		return hostErr
	}

	enis, err := n.adopt.attached(ctx, seen.mds, seen.attached)
	if err != nil {
		return fmt.Errorf("ipamd init: %w", err)
	}
	if err := n.cards.build(n.cfg, n.node, n.poolEnv, n.cpHealth, n.track, n.log); err != nil {
		return err
	}
	for _, sn := range subs {
		subnetCIDRs[sn.ID] = sn.CIDR
		if awsutils.SubnetExcluded(sn, n.cfg.ClusterName) {
			n.node.excluded[sn.ID] = true
		}
	}
	for _, e := range enis {
		if err := n.adopt.adopt(ctx, e, subnetCIDRs); err != nil {
			return fmt.Errorf("ipamd init: %w", err)
		}
	}
	if err := n.restore.restoreAll(ctx, n.orphans.liveness(ctx)); err != nil {
		return fmt.Errorf("ipamd init: %w", err)
	}
	n.observe.pool()
	n.ready.set()
	n.log.Info("node initialised", "instance", id.InstanceID, "type", typ.Type, "maxENIs", typ.MaxENIs,
		"ipv4PerENI", typ.IPv4PerENI, "prefixDelegation", n.node.pd, "maxPods", n.node.maxPods.get())
	return nil
}

// discoverSubnets lists the VPC's subnets in the node's availability zone
// for subnet discovery and remembers those new ENIs may use; nil without
// subnet discovery or when EC2 cannot say.
func (n *IPAM) discoverSubnets(ctx context.Context) []awsutils.Subnet {
	if !n.cfg.EnableSubnetDiscovery || n.cfg.IMDSOnlyMode {
		return nil
	}
	subs, err := n.subs.Subnets(ctx, n.node.vpcID, n.node.id.AZ)
	if err != nil {
		n.log.Warn("subnet discovery: cannot list subnets; no ENI is excluded", "err", err)
		return nil
	}
	if _, err := n.subnets.remember(subs); err != nil {
		n.log.Warn("subnet discovery: no subnet for new ENIs yet", "err", err)
	}
	return subs
}

// maxPods: the test override, else the node's capacity from the API
// server, else upstream's eni-max-pods formula for the instance type.
func maxPods(ctx context.Context, cfg config.Config, k Kubernetes, t awsutils.InstanceTypeInfo, log *slog.Logger) int {
	if cfg.MaxPodsOverride > 0 {
		return cfg.MaxPodsOverride
	}
	if m, err := k.MaxPods(ctx); err == nil && m > 0 {
		return m
	} else if err != nil {
		log.Warn("could not read the node's pod capacity; using the instance type's", "err", err)
	}
	if t.MaxENIs > 0 && t.IPv4PerENI > 1 {
		return t.MaxENIs*(t.IPv4PerENI-1) + 2
	}
	return 110
}
