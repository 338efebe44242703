package main

import (
	"context"
	"errors"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
	"github.com/vpc-cni/vpc-cni/pkg/ipamclient"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
)

// del releases the pod's addresses and undoes its wiring
// (docs/compatibility.md, "Plugin (aws-cni) and runtime input"). It succeeds whenever nothing is left to do, so runtimes can repeat
// it, and it does what it can without ipamd or without the netns.
func (inv *invocation) del(args *entry.Args) error {
	// DEL never touches the inside of CNI_NETNS (the pair goes with the
	// namespace), so a bad path only needs saying.
	if err := podnet.VerifyNetNS(args.Netns); err != nil && !errors.Is(err, podnet.ErrNoNetNS) {
		inv.log.Warn("CNI_NETNS is not a pod's network namespace; nothing inside it is touched", "error", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), delTimeout)
	defer cancel()

	if done, err := inv.delBranchFromPrevResult(ctx, args); done {
		return err
	}
	reply, err := (&ipamclient.Client{Socket: inv.ipamdSocket}).DelNetwork(ctx, inv.delRequest(args, "PodDeleted"))
	switch {
	case err != nil && isUnknownPod(err):
		inv.log.Info("ipamd holds no address for the pod; nothing to release")
		return nil
	case err != nil:
		// ipamd is down or failing: undo what the result recorded and let
		// ipamd reclaim the addresses when it reconciles.
		inv.teardownFromPrevResult(ctx, args, err)
		return nil
	case !reply.Success:
		return types.NewError(ErrIpamd, "ipamd failed to release the pod's addresses", "")
	}
	if err := inv.teardownFromReply(ctx, args, reply); err != nil {
		return entry.Error(ErrWiring, "remove pod network", err)
	}
	if reply.NetworkPolicyMode != "" {
		refused, err := deletePodPolicies(ctx, inv.npaSocket, &ipamclient.DeleteNpRequest{
			K8SPodName: inv.k8s.PodName, K8SPodNamespace: inv.k8s.PodNamespace,
		})
		if err != nil {
			return err
		}
		if refused != nil {
			inv.log.Warn("network policy agent did not delete the pod's policies", "error", refused)
		}
	}
	inv.log.Info("pod deleted", "ips", len(reply.IpAllocationMetadata))
	return nil
}

// delBranchFromPrevResult handles branch-ENI pods entirely from prevResult:
// their addresses belong to the branch ENI, not to ipamd's pool.
func (inv *invocation) delBranchFromPrevResult(ctx context.Context, args *entry.Args) (bool, error) {
	if inv.conf.PrevResult == nil {
		return false, nil
	}
	_, vlan, err := dummyVLAN(inv.conf.PrevResult)
	switch {
	case errors.Is(err, errNoDummy) || err == nil && vlan == 0:
		return false, nil
	case err != nil:
		return true, invalidConfig("prevResult", err.Error())
	case args.Netns == "":
		return true, nil
	}
	w, err := fromPrevResult(inv.conf.PrevResult, args.Netns, args.IfName)
	if err != nil {
		return true, invalidConfig("prevResult", err.Error())
	}
	if err := podnet.TeardownBranch(ctx, w.Pod, vlan); err != nil {
		return true, entry.Error(ErrWiring, "remove branch-ENI pod network", err)
	}
	return true, nil
}

// teardownFromPrevResult undoes a regular pod's wiring from the result its
// ADD printed. It never fails DEL: cause says why ipamd was not used.
func (inv *invocation) teardownFromPrevResult(ctx context.Context, args *entry.Args, cause error) {
	log := inv.log.With("ipamdError", cause.Error())
	if inv.conf.PrevResult == nil {
		log.Warn("ipamd unavailable and no prevResult; nothing torn down")
		return
	}
	w, err := fromPrevResult(inv.conf.PrevResult, args.Netns, args.IfName)
	if err != nil {
		log.Warn("ipamd unavailable and prevResult unusable; nothing torn down", "error", err)
		return
	}
	if err := podnet.Teardown(ctx, w.Pod); err != nil {
		log.Warn("tearing down from prevResult failed", "error", err)
		return
	}
	log.Info("ipamd unavailable; pod network removed using prevResult")
}

func (inv *invocation) teardownFromReply(ctx context.Context, args *entry.Args, reply *ipamclient.DelNetworkReply) error {
	meta := reply.IpAllocationMetadata
	if len(meta) == 0 {
		inv.log.Warn("ipamd released no address for the pod")
		return nil
	}
	vlan := int(reply.PodVlanId)
	ifs, err := podInterfaces(meta, inv.conf.VethPrefix, args.IfName, inv.k8s)
	if err != nil {
		return err
	}
	pod := podnet.Pod{NetNS: args.Netns, Interfaces: ifs}
	if vlan == 0 {
		return podnet.Teardown(ctx, pod)
	}
	if args.Netns == "" {
		return nil
	}
	pod.Interfaces = ifs[:1]
	return podnet.TeardownBranch(ctx, pod, vlan)
}
