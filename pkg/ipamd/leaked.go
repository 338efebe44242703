package ipamd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// leakedSweepEnabled: upstream sweeps only in IPv4 mode, with provisioning
// on, unless DISABLE_LEAKED_ENI_CLEANUP.
func (n *IPAM) leakedSweepEnabled() bool {
	return !n.cfg.DisableLeakedENICleanup && !n.cfg.DisableProvisioning && n.cfg.EnableIPv4
}

// SweepLeaked deletes unattached ENIs that ipamd created (description
// aws-K8S-…) and whose createdAt tag is older than minAge. An ENI without
// a createdAt tag (or with an unreadable one) is stamped now and left for a
// later sweep.
func (n *IPAM) SweepLeaked(ctx context.Context, minAge time.Duration) (deleted int, err error) {
	enis, err := n.leak.LeakedENIs(ctx, n.node.vpcID, n.cfg.ClusterName)
	if err != nil {
		return 0, fmt.Errorf("listing leaked ENIs: %w", err)
	}
	return n.sweep(ctx, enis, minAge, false)
}

// sweep applies the leaked-ENI rule to one listing. own: this instance's
// unattached ENIs go at once, whatever their age.
func (n *IPAM) sweep(ctx context.Context, enis []awsutils.ENI, minAge time.Duration, own bool) (deleted int, err error) {
	now := time.Now()
	var errs []error
	for _, e := range enis {
		if !strings.HasPrefix(e.Description, awsutils.DescriptionPrefix) || e.Attachment != nil {
			continue
		}
		mine := own && e.Tags[awsutils.TagInstanceID] == n.node.id.InstanceID &&
			e.Description == awsutils.ENIDescription(n.node.id.InstanceID)
		if !mine {
			switch decideLeaked(e.Tags, now, minAge) {
			case awsutils.LeakSkip:
				continue
			case awsutils.LeakStamp:
				if err := n.ec2.CreateTags(ctx, e.ID, map[string]string{awsutils.TagCreatedAt: now.UTC().Format(time.RFC3339)}); err != nil {
					errs = append(errs, err)
				}
				continue
			}
		}
		if err := n.ec2.DeleteENI(ctx, e.ID); err != nil && !awsutils.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting leaked ENI %s: %w", e.ID, err))
			continue
		}
		if mine {
			n.log.Info("deleted an unattached ENI this node created before a restart", "eni", e.ID)
		} else {
			n.log.Info("deleted leaked ENI", "eni", e.ID, "createdAt", e.Tags[awsutils.TagCreatedAt])
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}

// sweepAtStart lists the leaked-ENI candidates once at start-up: it deletes
// unattached ENIs created for this very instance (leftovers of a crash
// between create and attach; nothing of this instance is allocating yet,
// so no age guard is needed) and applies the periodic rule to the rest.
// That listing is the sweeper's first round, so the sweeper does not ask
// EC2 the same question again minutes later (docs/compatibility.md,
// "ipamd: failed ENI calls").
func (n *IPAM) sweepAtStart(ctx context.Context) error {
	if !n.leakedSweepEnabled() {
		return nil
	}
	enis, err := n.leak.LeakedENIs(ctx, n.node.vpcID, n.cfg.ClusterName)
	if err != nil {
		return fmt.Errorf("listing leaked ENIs: %w", err)
	}
	n.sweptAtStart = true
	_, err = n.sweep(ctx, enis, n.times.LeakedMinAge, true)
	return err
}

// runLeakedSweeper sweeps every LeakedSweep, each time after a random
// pause of up to LeakedSweep/12, until ctx ends. The first round comes soon
// after start unless sweepAtStart already made it.
func (n *IPAM) runLeakedSweeper(ctx context.Context) {
	if !n.leakedSweepEnabled() {
		return
	}
	// Upstream sweeps at start after a random pause of up to 5 minutes, then
	// hourly: the jitter spreads the Describe calls of many nodes started
	// together.
	jitter := func() time.Duration { return time.Duration(rand.Int64N(int64(n.times.LeakedSweep/12) + 1)) }
	wait := jitter()
	if n.sweptAtStart {
		wait += n.times.LeakedSweep
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = n.times.LeakedSweep + jitter()
		if n.terminating.isSet() {
			return
		}
		if _, err := n.SweepLeaked(ctx, n.times.LeakedMinAge); err != nil && ctx.Err() == nil {
			n.log.Warn("leaked-ENI sweep failed", "err", err)
		}
	}
}

// decideLeaked is awsutils.DecideLeaked with a configurable minimum age.
func decideLeaked(tags map[string]string, now time.Time, minAge time.Duration) awsutils.LeakAction {
	return awsutils.DecideLeaked(tags, now.Add(awsutils.LeakedENIMinAge-minAge))
}
