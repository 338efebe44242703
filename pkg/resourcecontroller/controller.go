// Package resourcecontroller is an open stand-in for the VPC resource
// controller EKS runs in its control plane for security groups for pods:
// it gives each SGP node a trunk ENI and advertises vpc.amazonaws.com/pod-eni
// capacity, mutates matching pods to request that resource, makes one
// branch ENI per such pod with the policy's groups, annotates the pod for
// ipamd, and deletes the branch after a cool-down once the pod is gone.
//
// Planning is pure (MatchPolicies, the registry's capacity and VLAN
// bookkeeping, DecodeAnnotation); EC2 and Kubernetes calls sit in the
// reconcilers around it. All state is in memory and rebuilt from EC2 tags
// and pod annotations at start, as EKS's controller does.
package resourcecontroller

import (
	"errors"
	"fmt"
	"log/slog"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Config is the controller's validated configuration.
type Config struct {
	// ClusterName tags every ENI (kubernetes.io/cluster/<name>=owned).
	ClusterName string
	// VPCID scopes the cleaners' describes; empty: the cluster cleaner
	// does not run.
	VPCID string
	// ClusterCleanInterval is how often the cluster cleaner looks for
	// leaked ENIs (default 30m, as on EKS); one available at two passes in
	// a row is deleted.
	ClusterCleanInterval time.Duration
	// NodeCleanWorkers bounds the deleted nodes whose ENIs are cleaned up
	// at once (default 10, EKS's --max-node-reconcile); NodeCleanTimeout
	// bounds one cleanup (default 3m).
	NodeCleanWorkers int
	NodeCleanTimeout time.Duration
	// DeinitDelay is how long a node that is gone (its Node deleted) or
	// lost SGP keeps its trunk state before its branches are deleted
	// (default 1m, as on EKS), so that its pods' deletions (evictions)
	// arrive first and a Node registered again meanwhile keeps them.
	DeinitDelay time.Duration
	// Cooldown is how long a released branch waits before it is deleted
	// (default 60s), so that old iptables/ARP state for its address expires.
	// The amazon-vpc-cni ConfigMap's branch-eni-cooldown overrides it.
	Cooldown time.Duration
	// CooldownFloor is the shortest branch-eni-cooldown the ConfigMap may
	// set; less is read as this (default 30s, as on EKS).
	CooldownFloor time.Duration
	// CooldownTick is how often cooled branches are looked for (default 30s).
	CooldownTick time.Duration
	// GCInterval is how often leaked branches are looked for (default 1m).
	GCInterval time.Duration
	// MaxGroupsPerENI bounds the groups of one branch (default 5, EC2's
	// default quota): more is refused before any EC2 call.
	MaxGroupsPerENI int
	// RetryDelay is how long a pod waits for a trunk or capacity (default 1s).
	RetryDelay time.Duration
	Log        *slog.Logger
	// clock is the controller's clock (time.Now); tests skew it against
	// the API server's.
	clock func() time.Time
}

func (c *Config) defaults() {
	if c.Cooldown == 0 {
		c.Cooldown = 60 * time.Second
	}
	if c.CooldownFloor == 0 {
		c.CooldownFloor = MinCooldown
	}
	if c.CooldownTick == 0 {
		c.CooldownTick = 30 * time.Second
	}
	if c.GCInterval == 0 {
		c.GCInterval = time.Minute
	}
	if c.NodeCleanWorkers == 0 {
		c.NodeCleanWorkers = 10
	}
	if c.NodeCleanTimeout == 0 {
		c.NodeCleanTimeout = 3 * time.Minute
	}
	if c.DeinitDelay == 0 {
		c.DeinitDelay = time.Minute
	}
	if c.ClusterCleanInterval == 0 {
		c.ClusterCleanInterval = 30 * time.Minute
	}
	if c.MaxGroupsPerENI == 0 {
		c.MaxGroupsPerENI = 5
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.clock == nil {
		c.clock = time.Now
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.ClusterName == "" {
		errs = append(errs, errors.New("cluster name is empty"))
	}
	for name, d := range map[string]time.Duration{"cool-down": c.Cooldown, "cool-down floor": c.CooldownFloor, "cool-down tick": c.CooldownTick, "GC interval": c.GCInterval, "cluster clean interval": c.ClusterCleanInterval, "node clean timeout": c.NodeCleanTimeout, "deinit delay": c.DeinitDelay, "retry delay": c.RetryDelay} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", name, d))
		}
	}
	if c.NodeCleanWorkers < 1 {
		errs = append(errs, fmt.Errorf("node clean workers %d is not positive", c.NodeCleanWorkers))
	}
	if c.MaxGroupsPerENI < 1 || c.MaxGroupsPerENI > 16 {
		errs = append(errs, fmt.Errorf("max groups per ENI %d is not in 1-16", c.MaxGroupsPerENI))
	}
	return errors.Join(errs...)
}

// Controller holds the trunk registry and the EC2 and Kubernetes clients.
type Controller struct {
	cfg Config
	ec2 EC2
	c   client.Client // cached reads, direct writes
	api client.Reader // uncached reads (fresh pod labels)
	reg *registry
	rec recorder
	// warned remembers which pods were told about the capacity limit.
	warned *noteSet
	// toldGroups: the SecurityGroupRequested message each pod was sent.
	toldGroups *noteSet
	// unsupported remembers the nodes (→ instance id) whose type cannot
	// trunk, so their updates describe nothing again.
	unsupported *noteSet
	// cooldown is the branch cool-down in force: Config.Cooldown until the
	// amazon-vpc-cni ConfigMap sets one (configmap.go).
	cooldown *cooldown
	// kick asks the node controller to reconcile a node outside its own
	// events: its trunk ENI was found gone (trunkgone.go).
	kick chan event.GenericEvent
	// coolWake wakes the cool-down loop before its tick; coolJobs bounds
	// its per-node delete jobs (cooldeletes.go).
	coolWake chan struct{}
	coolJobs *nodeCleaner
	// gcJobs bounds the GC's per-node and sweep jobs, looseJobs its
	// retries of gone nodes' branch deletes (gc.go).
	gcJobs    *nodeCleaner
	looseJobs *nodeCleaner
	// cleanJobs bounds the cluster cleaner's per-ENI deletes
	// (clustercleaner.go).
	cleanJobs *nodeCleaner
	// cleaner bounds the deleted nodes' cleanups (nodecleaner.go).
	cleaner *nodeCleaner
	// unmanaging: since when nodes lack SGP or are gone (unmanage.go,
	// nodegone.go).
	unmanaging *unmanaging
	// features: of CNINodes deleted under live Nodes, for their new ones.
	features *featureKeep
	// remaking: CNINodes of live Nodes waited for to go and be made again.
	remaking *remaking
	// deinitOver: gone nodes whose DeinitDelay is over, their cleanup
	// not done yet (nodegone.go).
	deinitOver *noteSet
	// gone: the nodes whose branches are being deleted in the
	// background (gonebranches.go).
	gone *goneJobs
	// deleting: branch ENIs of dropped trunk states being deleted in the
	// background (droppedbranches.go).
	deleting *branchDeletes
	// sweepSeen: when the start-up sweep first saw each Node and CNINode
	// (firstseen.go).
	sweepSeen *firstSeen
	// spared: branches the sweep left to running pods (sparedbranches.go).
	spared *sparedBranches
}

// New validates cfg and builds a controller; SetupWithManager wires it.
func New(cfg Config, ec2 EC2) (*Controller, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("resource controller config: %w", err)
	}
	if ec2 == nil {
		return nil, errors.New("resource controller: no EC2 client")
	}
	return &Controller{cfg: cfg, ec2: ec2, reg: newRegistry(), warned: newNoteSet(), toldGroups: newNoteSet(), unsupported: newNoteSet(), cooldown: newCooldown(cfg.Cooldown),
		kick: make(chan event.GenericEvent, 16), coolWake: make(chan struct{}, 1), coolJobs: newNodeCleaner(coolDeleteNodes), gcJobs: newNodeCleaner(gcJobSlots), looseJobs: newNodeCleaner(looseJobSlots), cleanJobs: newNodeCleaner(cleanerDeletes), cleaner: newNodeCleaner(cfg.NodeCleanWorkers), unmanaging: newUnmanaging(), features: newFeatureKeep(), remaking: newRemaking(), deinitOver: newNoteSet(), gone: newGoneJobs(), deleting: newBranchDeletes(), sweepSeen: newFirstSeen(), spared: &sparedBranches{}}, nil
}
