package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
)

// leakSweeper deletes unattached ENIs that ipamd created and that nobody
// deleted (a node gone, a crash between create and attach). Its one field
// of state, sweptAtStart, is written by atStart before run starts and read
// only by run.
type leakSweeper struct {
	ec2         EC2
	leak        LeakedENILister
	node        *nodeState // instance and VPC ids, set by Init before any sweep
	cluster     string
	enabled     bool
	every       time.Duration // LeakedSweep
	minAge      time.Duration // LeakedMinAge
	terminating *latch
	observe     *observer // nil: no metrics
	log         *slog.Logger

	sweptAtStart bool
}

// newLeakSweeper: upstream sweeps only in IPv4 mode, with provisioning on,
// unless DISABLE_LEAKED_ENI_CLEANUP.
func newLeakSweeper(cfg config.Config, ec2 EC2, leak LeakedENILister, node *nodeState, times Intervals, terminating *latch, log *slog.Logger) *leakSweeper {
	return &leakSweeper{
		ec2: ec2, leak: leak, node: node, cluster: cfg.ClusterName,
		enabled: !cfg.DisableLeakedENICleanup && !cfg.DisableProvisioning && cfg.EnableIPv4,
		every:   times.LeakedSweep, minAge: times.LeakedMinAge, terminating: terminating, log: log,
	}
}

// SweepLeaked deletes unattached ENIs that ipamd created (description
// aws-K8S-…) and whose createdAt tag is older than minAge. An ENI without
// a createdAt tag (or with an unreadable one) is stamped now and left for a
// later sweep.
func (s *leakSweeper) SweepLeaked(ctx context.Context, minAge time.Duration) (deleted int, err error) {
	enis, err := s.leak.LeakedENIs(ctx, s.node.vpcID, s.cluster)
	if err != nil {
		return 0, fmt.Errorf("listing leaked ENIs: %w", err)
	}
	return s.sweep(ctx, enis, minAge, false)
}

// sweep applies the leaked-ENI rule to one listing. own: this instance's
// unattached ENIs go at once, whatever their age.
func (s *leakSweeper) sweep(ctx context.Context, enis []awsutils.ENI, minAge time.Duration, own bool) (deleted int, err error) {
	now := time.Now()
	id := s.node.id.InstanceID
	var errs []error
	for _, e := range enis {
		if !strings.HasPrefix(e.Description, awsutils.DescriptionPrefix) || e.Attachment != nil {
			continue
		}
		mine := own && e.Tags[awsutils.TagInstanceID] == id && e.Description == awsutils.ENIDescription(id)
		if !mine {
			switch decideLeaked(e.Tags, now, minAge) {
			case awsutils.LeakSkip:
				continue
			case awsutils.LeakStamp:
				if err := s.ec2.CreateTags(ctx, e.ID, map[string]string{awsutils.TagCreatedAt: now.UTC().Format(time.RFC3339)}); err != nil {
					errs = append(errs, err)
				}
				continue
			}
		}
		if err := s.ec2.DeleteENI(ctx, e.ID); err != nil && !awsutils.IsNotFound(err) {
			s.observe.awsUtilsError(awsutils.UnhandledLeakedENIDelete, err)
			errs = append(errs, fmt.Errorf("deleting leaked ENI %s: %w", e.ID, err))
			continue
		}
		if mine {
			s.log.Info("deleted an unattached ENI this node created before a restart", "eni", e.ID)
		} else {
			s.log.Info("deleted leaked ENI", "eni", e.ID, "createdAt", e.Tags[awsutils.TagCreatedAt])
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}

// atStart lists the leaked-ENI candidates once at start-up: it deletes
// unattached ENIs created for this very instance (leftovers of a crash
// between create and attach; nothing of this instance is allocating yet,
// so no age guard is needed) and applies the periodic rule to the rest.
// That listing is the sweeper's first round, so the sweeper does not ask
// EC2 the same question again minutes later (docs/compatibility.md,
// "ipamd: failed ENI calls").
func (s *leakSweeper) atStart(ctx context.Context) error {
	if !s.enabled {
		return nil
	}
	enis, err := s.leak.LeakedENIs(ctx, s.node.vpcID, s.cluster)
	if err != nil {
		return fmt.Errorf("listing leaked ENIs: %w", err)
	}
	s.sweptAtStart = true
	_, err = s.sweep(ctx, enis, s.minAge, true)
	return err
}

// run sweeps every LeakedSweep, each time after a random pause of up to
// LeakedSweep/12, until ctx ends. The first round comes soon after start
// unless atStart already made it.
func (s *leakSweeper) run(ctx context.Context) {
	if !s.enabled {
		return
	}
	// Upstream sweeps at start after a random pause of up to 5 minutes, then
	// hourly: the jitter spreads the Describe calls of many nodes started
	// together.
	jitter := func() time.Duration { return time.Duration(rand.Int64N(int64(s.every/12) + 1)) }
	wait := jitter()
	if s.sweptAtStart {
		wait += s.every
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = s.every + jitter()
		if s.terminating.isSet() {
			return
		}
		if _, err := s.SweepLeaked(ctx, s.minAge); err != nil && ctx.Err() == nil {
			s.log.Warn("leaked-ENI sweep failed", "err", err)
		}
	}
}

// decideLeaked is awsutils.DecideLeaked with a configurable minimum age.
func decideLeaked(tags map[string]string, now time.Time, minAge time.Duration) awsutils.LeakAction {
	return awsutils.DecideLeaked(tags, now.Add(awsutils.LeakedENIMinAge-minAge))
}
