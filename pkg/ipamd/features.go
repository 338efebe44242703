package ipamd

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
)

// sgppPossible: ENABLE_POD_ENI on an instance type that can trunk ENIs
// (unknown types are assumed to). On other types no ENI slot is reserved
// for a trunk that will never come.
func (f *cniNodeFeatures) sgppPossible() bool {
	return f.cfg.EnablePodENI && awsutils.TrunkingCompatible(f.node.typ.Type)
}

// declareSGPP asks the VPC resource controller for a trunk ENI (CNINode
// feature) until one is attached and while an ENI slot is free for it.
func (f *cniNodeFeatures) declareSGPP(ctx context.Context) {
	if !f.cfg.EnablePodENI || !f.kube.present() {
		return
	}
	if !f.sgppPossible() {
		f.noteSGPP("ENABLE_POD_ENI=true but this instance type cannot trunk ENIs: security groups for pods are unavailable on this node",
			"instanceType", f.node.typ.Type)
		return
	}
	if _, ok := f.trunk.trunkENI(); ok {
		f.noteSGPP("")
		return
	}
	c, ok := f.cards.first()
	if !ok {
		return
	}
	// An unfreed ENI (detach failed) still takes its slot, as the planner counts it.
	if c.slotsTaken() >= c.maxENIs {
		f.noteSGPP("ENABLE_POD_ENI: no free ENI slot for a trunk ENI on this node")
		return
	}
	if err := f.kube.get().DeclareFeature(ctx, featureSGPP, ""); err != nil {
		f.noteSGPP("could not declare SecurityGroupsForPods on the CNINode", "err", err)
		return
	}
	f.noteSGPP("")
}

// noteSGPP logs a security-groups-for-pods problem when it differs from
// the last one ("" = none); the pool cycle calls declareSGPP every tick.
func (f *cniNodeFeatures) noteSGPP(msg string, args ...any) {
	if f.sgppNoteChanged(msg) && msg != "" {
		f.log.Warn(msg, args...)
	}
}

// cniNodeFeatures is what the pool cycle has declared on the CNINode:
// CustomNetworking (once, like upstream), and the last security-groups-for-
// pods problem logged (each logged once per change, not every cycle).
// customNet and sgppNote are its state (sgppNote under mu); the rest are
// collaborators.
type cniNodeFeatures struct {
	customNet atomic.Bool
	mu        sync.Mutex
	sgppNote  string

	cfg   config.Config
	kube  *kubeRef
	node  *nodeState
	cards *cardSet
	trunk *branchWait
	log   *slog.Logger
}

// sgppNoteChanged records msg and reports whether it differs from the last.
func (f *cniNodeFeatures) sgppNoteChanged(msg string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if msg == f.sgppNote {
		return false
	}
	f.sgppNote = msg
	return true
}

// declareCustomNetworking tells the VPC resource controller which
// ENIConfig branch ENIs of this node use (custom networking with security
// groups for pods, docs/compatibility.md, "Kubernetes objects"); once, like upstream.
func (f *cniNodeFeatures) declareCustomNetworking(ctx context.Context) {
	if !f.cfg.CustomNetworking || !f.cfg.EnablePodENI || !f.kube.present() || f.customNet.Load() {
		return
	}
	k := f.kube.get()
	ec, err := k.ENIConfig(ctx)
	if ec.Name == "" {
		f.log.Warn("custom networking: cannot resolve the node's ENIConfig for the CNINode feature", "err", err)
		return
	}
	if err != nil {
		// The name is known (the ENIConfig itself is not usable yet): the
		// feature only needs the name.
		f.log.Debug("custom networking: declaring the ENIConfig's name despite an error reading it", "eniConfig", ec.Name, "err", err)
	}
	if ec.Name != "default" {
		if err := k.DeclareFeature(ctx, featureCustomNet, ec.Name); err != nil {
			f.log.Warn("could not declare CustomNetworking on the CNINode", "eniConfig", ec.Name, "err", err)
			return
		}
	}
	f.customNet.Store(true)
}
