package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
)

// subnetChoice is a subnet a new ENI may be created in.
type subnetChoice struct {
	ID   string
	CIDR netip.Prefix
	Free int
	SGs  []string // nil: the primary ENI's groups
}

// eniSubnets lists the subnets a new ENI may go to, most free addresses
// first. Without subnet discovery (or if listing fails) it is the node's
// subnet alone.
func (n *IPAM) eniSubnets(ctx context.Context) ([]subnetChoice, error) {
	if n.cfg.CustomNetworking {
		ec, err := n.kube.get().ENIConfig(ctx)
		if errors.Is(err, errNoKube) {
			return nil, errors.New("custom networking (AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true) needs the Kubernetes API server to read the node's ENIConfig")
		}
		if err != nil {
			return nil, fmt.Errorf("custom networking: %w", err)
		}
		cidr, err := n.subnetCIDR(ctx, ec.Subnet)
		if err != nil {
			return nil, fmt.Errorf("custom networking: ENIConfig %s: %w", ec.Name, err)
		}
		return []subnetChoice{{ID: ec.Subnet, CIDR: cidr, SGs: ec.SecurityGroups}}, nil
	}
	own := []subnetChoice{{ID: n.node.subnetID, CIDR: n.node.subnetCIDR}}
	if !n.cfg.EnableSubnetDiscovery {
		return own, nil
	}
	if list, ok := n.subnets.get(time.Now(), n.times.SubnetCache); ok {
		return list, nil
	}
	subs, err := n.subs.Subnets(ctx, n.node.vpcID, n.node.id.AZ)
	if err != nil {
		n.log.Warn("subnet discovery failed; using the node's subnet", "err", err)
		return own, nil
	}
	return n.rememberSubnets(subs)
}

// rememberSubnets keeps the eligible subnets of a discovery answer, most
// free addresses first, for the next SubnetCache.
func (n *IPAM) rememberSubnets(subs []awsutils.Subnet) ([]subnetChoice, error) {
	var out []subnetChoice
	for _, s := range subs {
		if awsutils.SubnetEligible(s, n.node.subnetID, n.cfg.ClusterName) {
			out = append(out, subnetChoice{ID: s.ID, CIDR: s.CIDR, Free: s.AvailableIPs})
		}
	}
	slices.SortStableFunc(out, func(a, b subnetChoice) int { return b.Free - a.Free })
	if len(out) == 0 {
		return nil, fmt.Errorf("no eligible subnet in %s: the node's subnet %s is tagged %s=0 and no other subnet is tagged for pods",
			n.node.id.AZ, n.node.subnetID, awsutils.TagSubnetRoleCNI)
	}
	n.subnets.set(out, time.Now())
	return out, nil
}

// subnetCache keeps subnet discovery's answer: an ENI burst or churn needs
// the same list each time, and a full subnet drops it (forget), so the
// next ENI asks EC2 again. mu guards both fields.
type subnetCache struct {
	mu   sync.Mutex
	at   time.Time
	list []subnetChoice
}

func (s *subnetCache) get(now time.Time, ttl time.Duration) ([]subnetChoice, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.list == nil || now.Sub(s.at) >= ttl {
		return nil, false
	}
	return s.list, true
}

func (s *subnetCache) set(list []subnetChoice, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list, s.at = list, now
}

func (s *subnetCache) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = nil
}

// createENI runs the ENI life cycle: create (tagged, described
// aws-K8S-<instance>) → attach (awsutils undoes these on failure) →
// delete-on-termination (a failure keeps the ENI; retryDeleteOnTermination
// sets it later) → wait for instance metadata (bounded; EC2's data wins) →
// host networking → datastore. A failure after that detaches and deletes
// the ENI again; if that fails too, retryUnfreed finishes it, so no ENI
// leaks.
func (n *IPAM) createENI(ctx context.Context, c *card, count int, prefixes bool) error {
	subnets, err := n.eniSubnets(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for i, sn := range subnets {
		req := awsutils.AllocateENIRequest{
			CreateENIRequest: awsutils.CreateENIRequest{
				InstanceID: n.node.id.InstanceID, SubnetID: sn.ID, SecurityGroups: cmpSlice(sn.SGs, n.node.sgs.get()),
			},
			NetworkCard: c.index,
			DeviceIndex: c.freeDevices(1)[0],
		}
		if c.askDevice.get() {
			req.DeviceIndex = 0 // awsutils: the lowest index EC2 shows free
		}
		if prefixes {
			req.IPv4PrefixCount = count
		} else {
			req.SecondaryIPv4Count = count
		}
		e, err := n.ec2.AllocateENI(ctx, req)
		if errors.Is(err, awsutils.ErrDeleteOnTerminationUnset) {
			// Attached and usable: keep it (so it counts against the ENI
			// limit and its device index stays taken) and set
			// delete-on-termination on a later pool cycle
			// (docs/compatibility.md, "ipamd: failed ENI calls").
			n.log.Warn("new ENI kept without delete-on-termination; retrying later", "eni", e.ID, "err", err)
			n.book.awaitDeleteOnTermination(e.ID, e.Attachment.ID)
			err = nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("creating an ENI in subnet %s: %w", sn.ID, err))
			if awsutils.IsInsufficientCapacity(err) {
				n.subnets.forget() // its free count is stale now
			}
			c.askDevice.set(!awsutils.IsInsufficientCapacity(err))
			if awsutils.IsInsufficientCapacity(err) && i < len(subnets)-1 {
				continue // subnet discovery: try the next subnet
			}
			if prefixes && awsutils.Code(err) == awsutils.CodeInsufficientCidrBlocks {
				// No free /28 is not a full subnet: the next plan grows with /32s.
				return n.fallbackToSecondary(c, "creating an ENI with prefixes in subnet "+sn.ID)
			}
			c.noteInsufficient(err)
			return errors.Join(errs...)
		}
		c.askDevice.set(false)
		n.log.Info("ENI attached", "eni", e.ID, "subnet", sn.ID, "card", c.index, "device", e.Attachment.DeviceIndex,
			"addresses", len(e.SecondaryIPv4), "prefixes", len(e.IPv4Prefixes))
		if err := n.setupNewENI(ctx, c, e, sn.CIDR); err != nil {
			if n.keepForNextRun(ctx, e.ID, err) {
				return err
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			n.book.deleteOnTerminationDone(e.ID)
			if ferr := n.ec2.FreeENI(rctx, e.ID, e.Attachment.ID); ferr != nil {
				c.keepUnfreed(e.ID, e.Attachment.DeviceIndex)
				return errors.Join(err, fmt.Errorf("undoing: %w", ferr))
			}
			return err
		}
		return nil
	}
	return errors.Join(errs...)
}

// createENIs attaches k ENIs of count addresses (or prefixes) each for a
// burst of waiting ADDs: the EC2 calls of every ENI run at once, on distinct
// device indices in the first eligible subnet; then each attached ENI is
// wired and added in turn. An ENI that fails is undone as in createENI and
// the others are kept.
func (n *IPAM) createENIs(ctx context.Context, c *card, k, count int, prefixes bool) error {
	subnets, err := n.eniSubnets(ctx)
	if err != nil {
		return err
	}
	sn := subnets[0]
	devs := c.freeDevices(k)
	type result struct {
		eni awsutils.ENI
		err error
	}
	res := make([]result, k)
	var wg sync.WaitGroup
	for i := range k {
		req := awsutils.AllocateENIRequest{
			CreateENIRequest: awsutils.CreateENIRequest{
				InstanceID: n.node.id.InstanceID, SubnetID: sn.ID, SecurityGroups: cmpSlice(sn.SGs, n.node.sgs.get()),
			},
			NetworkCard: c.index,
			DeviceIndex: devs[i],
		}
		if prefixes {
			req.IPv4PrefixCount = count
		} else {
			req.SecondaryIPv4Count = count
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i].eni, res[i].err = n.ec2.AllocateENI(ctx, req)
		}()
	}
	wg.Wait()
	var errs []error
	for _, r := range res {
		e, err := r.eni, r.err
		if errors.Is(err, awsutils.ErrDeleteOnTerminationUnset) {
			n.log.Warn("new ENI kept without delete-on-termination; retrying later", "eni", e.ID, "err", err)
			n.book.awaitDeleteOnTermination(e.ID, e.Attachment.ID)
			err = nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("creating an ENI in subnet %s: %w", sn.ID, err))
			if awsutils.IsInsufficientCapacity(err) {
				n.subnets.forget()
			}
			if prefixes && awsutils.Code(err) == awsutils.CodeInsufficientCidrBlocks {
				errs = append(errs, n.fallbackToSecondary(c, "creating ENIs with prefixes in subnet "+sn.ID))
				continue
			}
			c.askDevice.set(!awsutils.IsInsufficientCapacity(err))
			c.noteInsufficient(err)
			continue
		}
		n.log.Info("ENI attached", "eni", e.ID, "subnet", sn.ID, "card", c.index, "device", e.Attachment.DeviceIndex,
			"addresses", len(e.SecondaryIPv4), "prefixes", len(e.IPv4Prefixes), "burst", k)
		if err := n.setupNewENI(ctx, c, e, sn.CIDR); err != nil {
			if n.keepForNextRun(ctx, e.ID, err) {
				errs = append(errs, err)
				continue
			}
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			n.book.deleteOnTerminationDone(e.ID)
			if ferr := n.ec2.FreeENI(rctx, e.ID, e.Attachment.ID); ferr != nil {
				c.keepUnfreed(e.ID, e.Attachment.DeviceIndex)
				err = errors.Join(err, fmt.Errorf("undoing: %w", ferr))
			}
			cancel()
			errs = append(errs, err)
			continue
		}
		n.handout.wake() // waiting ADDs take this ENI's addresses while the next is wired
	}
	return errors.Join(errs...)
}

// keepForNextRun reports whether a new ENI whose setup failed only because
// ipamd is stopping (ctx ended: SIGTERM, a DaemonSet rollout) stays
// attached: the next ipamd adopts it at start like any attached ENI, so
// freeing it would cost two EC2 calls now and an attach again in a moment.
func (n *IPAM) keepForNextRun(ctx context.Context, eniID string, err error) bool {
	if ctx.Err() == nil {
		return false
	}
	n.log.Info("stopping while a new ENI was set up; it stays attached for the next ipamd", "eni", eniID, "err", err)
	return true
}

// setupNewENI waits (bounded) for instance metadata to list the ENI, wires
// it on the host and adds it to the datastore; on failure it undoes its own
// steps (the caller frees the ENI in EC2).
func (n *IPAM) setupNewENI(ctx context.Context, c *card, e awsutils.ENI, subnet netip.Prefix) error {
	// EC2's answer has everything but, perhaps, the subnet's CIDR: only
	// then is lagging instance metadata worth waiting for. Otherwise the
	// ENI serves pods at once and instance metadata is only watched (off
	// the pool's path) until it lists the ENI, for the warning and for
	// introspection's "waiting on".
	if subnet.IsValid() {
		go n.confirmIMDS(ctx, e.ID)
	} else if md, ok := n.waitIMDS(ctx, e.ID); ok {
		subnet = md.SubnetIPv4CIDR
	} else {
		n.log.Warn("instance metadata does not list the new ENI yet; proceeding with EC2's data", "eni", e.ID,
			"waited", n.times.IMDSWait)
	}
	table := hostcontract.RouteTable(c.index, e.Attachment.DeviceIndex)
	mac, err := net.ParseMAC(e.MAC)
	if err != nil {
		return fmt.Errorf("new ENI %s has MAC %q: %w", e.ID, e.MAC, err)
	}
	if !subnet.IsValid() {
		if subnet, err = n.subnetCIDR(ctx, e.SubnetID); err != nil {
			return err
		}
	}
	if err := n.host.SetupENI(ctx, networkutils.ENI{MAC: mac, PrimaryIP: e.PrivateIPv4, Subnet: subnet,
		DeviceNumber: e.Attachment.DeviceIndex, NetworkCard: c.index, MTU: n.cfg.ENIMTU}); err != nil {
		return fmt.Errorf("host networking of new ENI %s: %w", e.ID, err)
	}
	undoHost := func() {
		if err := n.host.TeardownENI(context.WithoutCancel(ctx), e.PrivateIPv4, table); err != nil {
			n.log.Warn("could not undo host networking of ENI", "eni", e.ID, "err", err)
		}
	}
	if err := c.store.AddENI(datastore.ENI{ID: e.ID, DeviceNumber: e.Attachment.DeviceIndex, RouteTableID: table,
		SubnetID: e.SubnetID, CreatedAt: time.Now()}); err != nil {
		undoHost()
		return err
	}
	for _, p := range n.eniCIDRs(e) {
		if err := c.store.AddCIDR(e.ID, p); err != nil {
			if _, rerr := c.store.RemoveENI(e.ID, true); rerr != nil {
				n.log.Warn("could not undo datastore entry of ENI", "eni", e.ID, "err", rerr)
			}
			undoHost()
			return err
		}
	}
	n.book.remember(e.ID, e.PrivateIPv4, e.Attachment.ID)
	n.node.rememberMAC(e.ID, e.MAC)
	return nil
}

// confirmIMDS waits (bounded by Intervals.IMDSWait, past the end of ctx) for
// instance metadata to list a new ENI already in use, and warns if it never
// does: EC2 attached it but the instance may not see it.
func (n *IPAM) confirmIMDS(ctx context.Context, eniID string) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.times.IMDSWait)
	defer cancel()
	if _, ok := n.waitIMDS(wctx, eniID); !ok {
		n.log.Warn("instance metadata still does not list a new ENI that EC2 attached; serving pods from it with EC2's data",
			"eni", eniID, "waited", n.times.IMDSWait)
	}
}

// waitIMDS polls instance metadata until it lists eniID, at most
// Intervals.IMDSWait.
func (n *IPAM) waitIMDS(ctx context.Context, eniID string) (awsutils.ENIMetadata, bool) {
	defer n.track.Begin(waitIMDS, "instance metadata to list new ENI "+eniID)()
	deadline := time.Now().Add(n.times.IMDSWait)
	delay := 50 * time.Millisecond
	for {
		mds, err := n.md.ENIs(ctx)
		if err == nil {
			for _, m := range mds {
				if m.ENIID == eniID {
					return m, true
				}
			}
		}
		if time.Now().Add(delay).After(deadline) {
			return awsutils.ENIMetadata{}, false
		}
		select {
		case <-ctx.Done():
			return awsutils.ENIMetadata{}, false
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

// cmpSlice returns a unless it is empty, else b.
func cmpSlice(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// retryDeleteOnTermination sets delete-on-termination on the ENIs whose
// AllocateENI could not; an ENI no longer in a datastore (freed, or dropped
// by reconcile) is forgotten.
func (n *IPAM) retryDeleteOnTermination(ctx context.Context) {
	for id, att := range n.book.pendingDeleteOnTermination() {
		if !n.knowsENI(id) {
			n.book.deleteOnTerminationDone(id)
			continue
		}
		err := n.ec2.SetDeleteOnTermination(ctx, id, att)
		if err != nil && !awsutils.IsNotFound(err) {
			n.log.Warn("could not set delete-on-termination; retrying later", "eni", id, "err", err)
			continue
		}
		n.book.deleteOnTerminationDone(id)
	}
}

// knowsENI tells whether any card's datastore holds the ENI.
func (n *IPAM) knowsENI(id string) bool {
	for _, c := range n.cards {
		if _, ok := c.store.ENI(id); ok {
			return true
		}
	}
	return false
}

// retryUnfreed frees again the ENIs of card c that a free or an undo left
// behind; one reconcile adopted again is the store's once more.
func (n *IPAM) retryUnfreed(ctx context.Context, c *card) {
	for _, id := range c.unfreedIDs() {
		if _, ok := c.store.ENI(id); ok {
			c.forgetUnfreed(id)
			continue
		}
		// No attachment id: an earlier try may have detached it already.
		if err := n.ec2.FreeENI(ctx, id, ""); err != nil {
			n.log.Warn("could not free an ENI ipamd let go of; retrying later", "eni", id, "card", c.index, "err", err)
			continue
		}
		c.forgetUnfreed(id)
		n.book.forget(id)
		n.log.Info("ENI freed on retry", "eni", id, "card", c.index)
	}
}
