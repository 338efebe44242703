package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
)

// eniConfigError is a new ENI refused because the node's ENIConfig could
// not be read (missing, invalid, API server error): no EC2 call was made,
// so its retry is not spaced like an EC2 failure's (poolManager.backOff).
type eniConfigError struct{ err error }

func (e eniConfigError) Error() string { return "custom networking: " + e.err.Error() }
func (e eniConfigError) Unwrap() error { return e.err }

// subnetChoice is a subnet a new ENI may be created in.
type subnetChoice struct {
	ID   string
	CIDR netip.Prefix
	Free int
	SGs  []string // nil: the primary ENI's groups
	// From names where the choice came from for errors ("ENIConfig
	// pods-a"), "" for the node's subnet and subnet discovery.
	From string
}

// where names the subnet (and its ENIConfig) in errors.
func (s subnetChoice) where() string {
	if s.From == "" {
		return "subnet " + s.ID
	}
	return "subnet " + s.ID + " of " + s.From
}

// subnetFinder answers which subnets a new ENI may go to and what a
// subnet's CIDR is. It owns subnet discovery's cached answer: an ENI burst
// or churn needs the same list each time, and a full subnet drops it
// (forget), so the next ENI asks EC2 again. It also keeps every subnet
// CIDR EC2 listed: EC2 never changes a subnet's IPv4 CIDR, so the
// ENIConfig's subnet costs one DescribeSubnets, not one per new ENI.
// It caches a refusal (refused: no subnet the tags allow) alike:
// pods waiting past the primary ENI retry a new ENI after every failure
// backoff of ENI creation, which only a created ENI resets (backoff.go).
// mu guards at, list, refused, cidrs and cidrs6.
type subnetFinder struct {
	cfg    config.Config
	node   *nodeState
	kube   *kubeRef
	lister SubnetLister
	ttl    time.Duration // Intervals.SubnetCache
	log    *slog.Logger

	mu      sync.Mutex
	at      time.Time
	list    []subnetChoice
	refused error                   // no subnet allowed for a new ENI (tags), as of at
	cidrs   map[string]netip.Prefix // subnet id → IPv4 CIDR, as EC2 listed it
	cidrs6  map[string]netip.Prefix // subnet id → IPv6 CIDR (the first), as EC2 listed it
}

// forNewENI lists the subnets a new ENI may go to, most free addresses
// first. Without subnet discovery (or if listing fails) it is the node's
// subnet alone, unless tagged out of pod use (ownUnlessExcluded).
func (f *subnetFinder) forNewENI(ctx context.Context) ([]subnetChoice, error) {
	if f.cfg.CustomNetworking {
		ec, err := f.kube.get().ENIConfig(ctx)
		if errors.Is(err, errNoKube) {
			return nil, errors.New("custom networking (AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true) needs the Kubernetes API server to read the node's ENIConfig")
		}
		if err != nil {
			return nil, eniConfigError{err}
		}
		cidr, err := f.cidr(ctx, ec.Subnet)
		if err != nil {
			return nil, fmt.Errorf("custom networking: ENIConfig %s: %w", ec.Name, err)
		}
		return []subnetChoice{{ID: ec.Subnet, CIDR: cidr, SGs: ec.SecurityGroups, From: "ENIConfig " + ec.Name}}, nil
	}
	own := []subnetChoice{{ID: f.node.subnetID, CIDR: f.node.subnetCIDR}}
	if !f.cfg.EnableSubnetDiscovery {
		return f.ownUnlessExcluded(ctx, own)
	}
	if list, ok, refused := f.cached(time.Now()); ok {
		return list, refused
	}
	subs, err := f.lister.Subnets(ctx, f.node.vpcID, f.node.id.AZ)
	if err != nil {
		f.log.Warn("subnet discovery failed; using the node's subnet", "err", err)
		return own, nil
	}
	return f.remember(subs)
}

// ownUnlessExcluded is the node's subnet for a new ENI without subnet
// discovery, refused when its tags exclude it from pods
// (awsutils.SubnetExcluded): upstream checks them with discovery off too.
// If EC2 cannot list subnets, the node's subnet is used, as upstream.
func (f *subnetFinder) ownUnlessExcluded(ctx context.Context, own []subnetChoice) ([]subnetChoice, error) {
	if list, ok, refused := f.cached(time.Now()); ok {
		return list, refused
	}
	subs, err := f.lister.Subnets(ctx, f.node.vpcID, f.node.id.AZ)
	if err != nil {
		f.log.Warn("cannot read the node subnet's tags; creating the ENI there", "subnet", f.node.subnetID, "err", err)
		return own, nil
	}
	f.learnCIDRs(subs)
	for _, s := range subs {
		if s.ID == f.node.subnetID && awsutils.SubnetExcluded(s, f.cfg.ClusterName) {
			refused := fmt.Errorf("no subnet for a new ENI: the node's subnet %s is excluded from pods (tagged %s=%q, or scoped to other clusters) and ENABLE_SUBNET_DISCOVERY=false allows no other",
				s.ID, awsutils.TagSubnetRoleCNI, s.Tags[awsutils.TagSubnetRoleCNI])
			f.keep(nil, refused)
			return nil, refused
		}
	}
	f.keep(own, nil)
	return own, nil
}

// keep caches an answer for the next ttl: the subnets, or the refusal.
func (f *subnetFinder) keep(list []subnetChoice, refused error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list, f.refused, f.at = list, refused, time.Now()
}

// cached is the answer of the last ttl: the subnets, or the refusal.
func (f *subnetFinder) cached(now time.Time) ([]subnetChoice, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.list == nil && f.refused == nil || now.Sub(f.at) >= f.ttl {
		return nil, false, nil
	}
	return f.list, true, f.refused
}

// remember keeps the eligible subnets of a discovery answer, most free
// addresses first, for the next ttl.
func (f *subnetFinder) remember(subs []awsutils.Subnet) ([]subnetChoice, error) {
	f.learnCIDRs(subs)
	var out []subnetChoice
	for _, s := range subs {
		if awsutils.SubnetEligible(s, f.node.subnetID, f.cfg.ClusterName) {
			out = append(out, subnetChoice{ID: s.ID, CIDR: s.CIDR, Free: s.AvailableIPs})
		}
	}
	slices.SortStableFunc(out, func(a, b subnetChoice) int { return b.Free - a.Free })
	if len(out) == 0 {
		refused := fmt.Errorf("no eligible subnet in %s: the node's subnet %s is tagged %s=0 and no other subnet is tagged for pods",
			f.node.id.AZ, f.node.subnetID, awsutils.TagSubnetRoleCNI)
		f.keep(nil, refused)
		return nil, refused
	}
	f.keep(out, nil)
	return out, nil
}

// forget drops the cached answer: a subnet filled, its free count is stale.
func (f *subnetFinder) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list, f.refused = nil, nil
}

// cidr finds a subnet's IPv4 CIDR: the node's own, one EC2 listed
// before, else through subnet discovery's lister.
func (f *subnetFinder) cidr(ctx context.Context, subnetID string) (netip.Prefix, error) {
	if subnetID == f.node.subnetID && f.node.subnetCIDR.IsValid() {
		return f.node.subnetCIDR, nil
	}
	if p, ok := f.knownCIDR(subnetID); ok {
		return p, nil
	}
	subs, err := f.lister.Subnets(ctx, f.node.vpcID, f.node.id.AZ)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("finding the CIDR of subnet %s: %w", subnetID, err)
	}
	f.learnCIDRs(subs)
	if p, ok := f.knownCIDR(subnetID); ok {
		return p, nil
	}
	return netip.Prefix{}, fmt.Errorf("CIDR of subnet %s is unknown: EC2 lists no such subnet in VPC %s and availability zone %s",
		subnetID, f.node.vpcID, f.node.id.AZ)
}

// learnCIDRs keeps the CIDRs of listed subnets.
func (f *subnetFinder) learnCIDRs(subs []awsutils.Subnet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range subs {
		if len(s.IPv6CIDRs) > 0 {
			if f.cidrs6 == nil {
				f.cidrs6 = map[string]netip.Prefix{}
			}
			f.cidrs6[s.ID] = s.IPv6CIDRs[0]
		}
		if !s.CIDR.IsValid() {
			continue
		}
		if f.cidrs == nil {
			f.cidrs = map[string]netip.Prefix{}
		}
		f.cidrs[s.ID] = s.CIDR
	}
}

func (f *subnetFinder) knownCIDR(subnetID string) (netip.Prefix, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.cidrs[subnetID]
	return p, ok
}
