package main

import (
	"context"
	"errors"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// check verifies the wiring that prevResult describes and names every
// missing piece.
func (inv *invocation) check(args *entry.Args) error {
	// No ADD wired a pod with such names, so there is nothing to verify.
	if err := checkK8sArgLengths(inv.k8s); err != nil {
		return err
	}
	if err := inv.conf.PrevResultErr; err != nil {
		return invalidConfig("prevResult", err.Error())
	}
	if inv.conf.PrevResult == nil {
		return invalidConfig("CHECK needs prevResult", "")
	}
	w, err := fromPrevResult(inv.conf.PrevResult, args.Netns, args.IfName, inv.k8s)
	if err != nil {
		return invalidConfig("prevResult", err.Error())
	}
	strict := w.VLANID != 0 && wiredStrict(w, inv.conf.StrictSG)
	prefix := inv.conf.VethPrefix
	if strict {
		prefix = vethname.BranchPrefix
	}
	for i := range w.Pod.Interfaces {
		ifc := &w.Pod.Interfaces[i]
		if ifc.HostVeth == "" {
			ifc.HostVeth = vethname.HostVethName(prefix, inv.k8s.PodNamespace, inv.k8s.PodName, ifc.Index)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), delTimeout)
	defer cancel()
	if w.VLANID != 0 {
		err = podnet.CheckBranch(ctx, w.Pod, w.VLANID, w.Gateway, strict)
	} else {
		err = podnet.Check(ctx, w.Pod)
	}
	var ce *podnet.CheckError
	switch {
	case errors.As(err, &ce):
		return types.NewError(ErrCheckFailed, ce.Error(), "")
	case err != nil:
		return entry.Error(ErrWiring, "read pod network", err)
	}
	return nil
}

// wiredStrict reports whether a branch-ENI pod was wired in strict mode:
// its host veth's name in the result says so (`vlan…` only in strict
// mode), whatever mode the node has switched to since; without that name,
// the netconf's mode.
func wiredStrict(w prevWiring, confStrict bool) bool {
	if len(w.Pod.Interfaces) == 0 || w.Pod.Interfaces[0].HostVeth == "" {
		return confStrict
	}
	return strings.HasPrefix(w.Pod.Interfaces[0].HostVeth, vethname.BranchPrefix)
}

// status reports whether the plugin can serve ADDs: ipamd must answer
// its gRPC health check.
func (inv *invocation) status(*entry.Args) error {
	if err := ipamdHealthy(context.Background(), inv.ipamdSocket); err != nil {
		return entry.Error(types.ErrPluginNotAvailable, "ipamd is not serving", err)
	}
	return nil
}

// gc has nothing to do: ipamd reconciles addresses against the pods it
// knows and the kernel state of deleted sandboxes goes with their netns.
func gc(*entry.Args) error { return nil }
