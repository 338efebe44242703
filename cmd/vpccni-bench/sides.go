package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
)

// side is one agent whose figures are measured: ours (bins nil: the
// binaries of config.BinDir, run as config.Agent says) or a supplied
// aws-node-compatible compare agent ("bring your own agent"). Each side
// has its own identical nodes in the same local VPC; the phases run ours,
// then the compare agent, so the two interleave phase by phase and only
// one ipamd runs at a time.
type side struct {
	name string
	bins *localvpc.AgentBinaries
}

var ours = side{name: "ours"}

// nodeName is the side's node for one of the bench's node roles.
func (s side) nodeName(role string) string {
	if s.bins == nil {
		return role
	}
	return role + "-compare"
}

// ipamdComm is the ipamd process's comm (its binary's name, cut to the
// kernel's 15 characters).
func (s side) ipamdComm() string {
	name := localvpc.IPAMDBin
	if s.bins != nil {
		name = filepath.Base(s.bins.IPAMD)
	}
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

// compareEnv is what the compare agent needs on top of a figure's
// environment: the bench runs it without an API server (upstream's ipamd
// dereferences a nil Kubernetes client unless it manages ENIs regardless).
var compareEnv = []string{"AWS_MANAGE_ENIS_NON_SCHEDULABLE=true"}

// node returns the current side's node for a role.
func (r *run) node(role string) (*localvpc.Node, error) {
	return r.v.Node(r.side.nodeName(role))
}

// launch starts the current side's agent on n without waiting.
func (r *run) launch(ctx context.Context, n *localvpc.Node, env []string) error {
	if r.side.bins == nil {
		return r.v.StartAgent(ctx, n, env)
	}
	return r.v.StartAgentBinaries(ctx, n, *r.side.bins, append(append([]string(nil), env...), compareEnv...))
}

// waitReady waits until the current side's node is network-ready
// (conflist written by the installer, or by localvpc for an ipamd alone).
func (r *run) waitReady(ctx context.Context, n *localvpc.Node) error {
	if r.side.bins == nil {
		return r.v.WaitReady(ctx, n, nil)
	}
	return r.v.WaitAgentBinariesReady(ctx, n, nil)
}

// mergeSides folds the compare agent's figures into ours: each value gets
// the compare agent's value of the same name.
func mergeSides(figs []bench.Figure, compare map[string]bench.Figure) {
	for i := range figs {
		if c, ok := compare[figs[i].Key]; ok {
			figs[i].MergeCompare(c)
		}
	}
}

func (s side) String() string {
	if s.bins == nil {
		return s.name
	}
	return fmt.Sprintf("%s (%s, %s)", s.name, s.bins.IPAMD, s.bins.Plugin)
}
