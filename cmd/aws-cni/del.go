package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
	"github.com/vpc-cni/vpc-cni/pkg/ipamclient"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
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
	if err := inv.conf.PrevResultErr; err != nil {
		inv.log.Warn("prevResult is unusable; the pod is deleted as ipamd knows it", "error", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), delTimeout)
	defer cancel()
	// Markers of DELs the runtime gave up on are read by no later DEL.
	defer inv.sweepNPAPending(time.Now())

	if done, err := inv.delBranchFromPrevResult(ctx, args); done {
		return err
	}
	// The request goes out first; while ipamd answers, remove what
	// prevResult shows is the pod's and open the log.
	asked := (&ipamclient.Client{Socket: inv.ipamdSocket}).StartDelNetwork(ctx, inv.delRequest(args, "PodDeleted"))
	prev, prevErr := inv.prevPod(args)
	td := podnet.StartTeardown(ctx, prev)
	inv.openLog()
	reply, err := asked.Wait()
	// The node side is removed even when the answer took the DEL's whole
	// time (ipamd may have released the addresses all the same): a rule
	// left behind would misroute the next pod given the address.
	tctx, tcancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer tcancel()
	switch {
	case err != nil && isUnknownPod(err):
		inv.log.Info("ipamd holds no address for the pod; nothing to release")
		if err := inv.finishReleased(tctx, td, args, prevErr); err != nil {
			return entry.Error(ErrWiring, "remove what an earlier DEL of the pod left", err)
		}
		if err := inv.delOrphanBranch(tctx, args, prevErr, "ipamd holds nothing for the pod"); err != nil {
			return err
		}
		if inv.npaPending() {
			// An earlier DEL released the pod but did not get through
			// to the agent.
			return inv.deletePolicies(ctx, args)
		}
		return nil
	case err != nil:
		// ipamd is down or failing: undo what the result recorded and let
		// ipamd reclaim the addresses when it reconciles.
		inv.teardownFromPrevResult(tctx, td, args, prev, prevErr, err)
		return inv.delOrphanBranch(tctx, args, prevErr, "ipamd did not answer")
	case !reply.Success:
		inv.closeTeardown(td)
		return types.NewError(ErrIpamd, "ipamd failed to release the pod's addresses", "")
	}
	if err := inv.teardownFromReply(tctx, td, args, reply); err != nil {
		return entry.Error(ErrWiring, "remove pod network", err)
	}
	if reply.NetworkPolicyMode != "" {
		if err := inv.deletePolicies(ctx, args); err != nil {
			return err
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
	// A prevResult that does not describe a branch-ENI pod of this pod
	// leaves the DEL to ipamd's answer, which names the pod's VLAN id when
	// it has one: failing would have the runtime retry it forever.
	_, vlan, err := dummyVLAN(inv.conf.PrevResult)
	switch {
	case errors.Is(err, errNoDummy) || err == nil && vlan == 0:
		return false, nil
	case err != nil:
		// The node may still tell: a VLAN link carrying this sandbox's mark.
		id, merr := podnet.MarkedVLANID(args.ContainerID)
		if merr != nil || id == 0 || args.Netns == "" {
			inv.log.Warn("prevResult is unusable; the pod is deleted as ipamd knows it", "error", err)
			return false, nil
		}
		return inv.delBranchFromNode(ctx, args, id, err)
	case args.Netns == "":
		return true, nil
	}
	w, err := fromPrevResult(inv.conf.PrevResult, args.Netns, args.IfName, inv.k8s)
	if err != nil {
		return inv.delBranchFromNode(ctx, args, vlan, err)
	}
	return inv.teardownBranch(ctx, args, w, vlan)
}

// delOrphanBranch ends a DEL that neither prevResult (prevErr says why
// there is none) nor ipamd (ipamd says why) tied to a branch ENI: an ADD
// killed before it printed its result, then ipamd down or the pod gone
// from the API server. A VLAN link carrying the sandbox's mark shows the
// ADD wired a branch, whose wiring goes as delBranchFromNode removes it.
func (inv *invocation) delOrphanBranch(ctx context.Context, args *entry.Args, prevErr error, ipamd string) error {
	if prevErr == nil || args.Netns == "" {
		return nil
	}
	vlan, err := podnet.MarkedVLANID(args.ContainerID)
	if err != nil {
		inv.log.Warn("could not look for a VLAN link marked as the sandbox's", "error", err)
		return nil
	}
	if vlan == 0 {
		return nil
	}
	_, err = inv.delBranchFromNode(ctx, args, vlan, fmt.Errorf("%w, and %s", prevErr, ipamd))
	return err
}

// delBranchFromNode is the DEL of a branch-ENI pod on VLAN id vlan whose
// prevResult is unusable (why): the node tells the address, through the
// pod's host veth (branchFromNode) or, once that is gone, the VLAN link's
// mark (delMarkedBranch).
func (inv *invocation) delBranchFromNode(ctx context.Context, args *entry.Args, vlan int, why error) (bool, error) {
	w, err := inv.branchFromNode(args, vlan)
	if err != nil {
		return inv.delMarkedBranch(ctx, args, vlan, why)
	}
	inv.log.Warn("prevResult is unusable; the branch's address is taken from the sandbox's host veth", "error", why,
		"address", w.Pod.Interfaces[0].Address.String())
	return inv.teardownBranch(ctx, args, w, vlan)
}

// teardownBranch removes the branch wiring w of VLAN id vlan.
func (inv *invocation) teardownBranch(ctx context.Context, args *entry.Args, w prevWiring, vlan int) (bool, error) {
	w.Pod.Sandbox, w.Pod.LockFile = args.ContainerID, inv.lockFile()
	// After a switch from strict to standard mode, a newer sandbox of the
	// pod has its host veth under the netconf prefix, not the prevResult's
	// `vlan…` name.
	kept, err := podnet.TeardownBranch(ctx, w.Pod, vlan,
		vethname.HostVethName(inv.conf.VethPrefix, inv.k8s.PodNamespace, inv.k8s.PodName, 0))
	logKept(inv.log, kept)
	if err != nil {
		return true, entry.Error(ErrWiring, "remove branch-ENI pod network", err)
	}
	return true, nil
}

// branchFromNode is the wiring of a branch-ENI pod on VLAN id vlan whose
// prevResult names the VLAN id but no usable address: the address the
// pod's host veth, marked as this sandbox's, routes. ipamd cannot be
// relied on instead: it is down, or the pod is gone from the API server
// and ipamd knows no branch for it, and the DEL succeeds all the same.
func (inv *invocation) branchFromNode(args *entry.Args, vlan int) (prevWiring, error) {
	veth, addr, err := podnet.OwnBranchAddress(args.ContainerID, vlan, []string{
		vethname.HostVethName(vethname.BranchPrefix, inv.k8s.PodNamespace, inv.k8s.PodName, 0),
		vethname.HostVethName(inv.conf.VethPrefix, inv.k8s.PodNamespace, inv.k8s.PodName, 0),
	})
	if err != nil {
		return prevWiring{}, err
	}
	ifc := podnet.Interface{ContainerIf: vethname.ContainerIfName(args.IfName, 0), HostVeth: veth, Address: addr}
	return prevWiring{VLANID: vlan, Pod: podnet.Pod{NetNS: args.Netns, Interfaces: []podnet.Interface{ifc}}}, nil
}

// delMarkedBranch is the DEL of a branch-ENI pod on VLAN id vlan whose
// prevResult is unusable (why) and whose host veth is gone with its
// namespace: a VLAN link carrying the sandbox's mark proves the branch's
// table and rules are the pod's (see podnet.TeardownMarkedBranch).
// Without one, the DEL goes by ipamd's answer.
func (inv *invocation) delMarkedBranch(ctx context.Context, args *entry.Args, vlan int, why error) (bool, error) {
	pod := podnet.Pod{NetNS: args.Netns, Sandbox: args.ContainerID, LockFile: inv.lockFile()}
	kept, err := podnet.TeardownMarkedBranch(ctx, pod, vlan, []string{
		vethname.HostVethName(vethname.BranchPrefix, inv.k8s.PodNamespace, inv.k8s.PodName, 0),
		vethname.HostVethName(inv.conf.VethPrefix, inv.k8s.PodNamespace, inv.k8s.PodName, 0),
	})
	if errors.Is(err, podnet.ErrBranchNotOwn) {
		inv.log.Warn("prevResult is unusable; the pod is deleted as ipamd knows it", "error", why, "node", err)
		return false, nil
	}
	logKept(inv.log, kept)
	if err != nil {
		return true, entry.Error(ErrWiring, "remove branch-ENI pod network", err)
	}
	inv.log.Warn("prevResult is unusable; the branch was removed by its VLAN link's mark", "error", why, "vlan", vlan)
	return true, nil
}

// deletePolicies tells the network policy agent the pod is gone unless
// the pod has a newer sandbox, whose policies the agent keeps under the
// same pod name. The check and the agent's answer are under the pod lock
// (see podnet.HoldPodLockForDEL): checked outside it, a DEL could find no
// newer sandbox just before that sandbox's ADD wired and had its policies
// enforced, then have them deleted.
func (inv *invocation) deletePolicies(ctx context.Context, args *entry.Args) error {
	release, busy := podnet.HoldPodLockForDEL(inv.lockFile(),
		vethname.HostVethName(inv.conf.VethPrefix, inv.k8s.PodNamespace, inv.k8s.PodName, 0))
	defer release()
	if busy {
		inv.log.Warn("the pod lock stayed taken by another DEL of the pod telling the network policy agent the pod is gone; " +
			"left it to that DEL (telling the agent unlocked could delete a newer sandbox's policies)")
		return nil
	}
	if inv.podHasNewerSandbox(args) {
		inv.clearNPAPending()
		return nil
	}
	// Its own npaTimeout, not what is left of the DEL's deadline (as the
	// node side has its own teardownTimeout): after an answer at the
	// deadline the agent must still be told, as a retried DEL finds the
	// pod unknown to ipamd and never tells it.
	refused, err := deletePodPolicies(context.WithoutCancel(ctx), inv.npaSocket, &ipamclient.DeleteNpRequest{
		K8SPodName: inv.k8s.PodName, K8SPodNamespace: inv.k8s.PodNamespace,
	})
	if err != nil {
		inv.markNPAPending()
		return err
	}
	inv.clearNPAPending()
	if refused != nil {
		inv.log.Warn("network policy agent did not delete the pod's policies", "error", refused)
	}
	return nil
}

// podHasNewerSandbox reports whether the pod's host veth, under either
// mode's name, is marked as another sandbox's: this DEL came late, and
// the network policies the agent keeps by pod name are that sandbox's.
func (inv *invocation) podHasNewerSandbox(args *entry.Args) bool {
	other, err := podnet.OtherSandboxVeth(args.ContainerID,
		vethname.HostVethName(inv.conf.VethPrefix, inv.k8s.PodNamespace, inv.k8s.PodName, 0),
		vethname.HostVethName(vethname.BranchPrefix, inv.k8s.PodNamespace, inv.k8s.PodName, 0))
	if err != nil {
		inv.log.Warn("could not tell whether the pod has a newer sandbox; its network policies are deleted", "error", err)
		return false
	}
	if other != "" {
		inv.log.Info("late DEL: left the pod's network policies to its sandbox " + other)
	}
	return other != ""
}

// logKept says what a late DEL left to another sandbox of the pod (or,
// from prevResult, to a newer pod given the address).
func logKept(log *slog.Logger, kept ...string) {
	for _, k := range kept {
		if k != "" {
			log.Info("late DEL: left alone " + k)
		}
	}
}

// prevPod is the regular pod prevResult describes: an empty Pod, and why,
// when there is no usable prevResult.
func (inv *invocation) prevPod(args *entry.Args) (podnet.Pod, error) {
	if inv.conf.PrevResult == nil {
		return podnet.Pod{}, errors.New("no prevResult")
	}
	w, err := fromPrevResult(inv.conf.PrevResult, args.Netns, args.IfName, inv.k8s)
	if err != nil {
		return podnet.Pod{}, fmt.Errorf("prevResult unusable: %w", err)
	}
	w.Pod.Sandbox, w.Pod.LockFile = args.ContainerID, inv.lockFile()
	return w.Pod, nil
}

// maxPodInterfaces bounds the host veths ownPod looks for: one per
// network card a multi-NIC pod may have.
const maxPodInterfaces = 16

// ownPod is the regular pod the node shows is this sandbox's: the
// addresses routed through its host veths that carry the sandbox's mark
// (see podnet.OwnInterfaces).
func (inv *invocation) ownPod(args *entry.Args) (podnet.Pod, error) {
	names := make([]string, maxPodInterfaces)
	for i := range names {
		names[i] = vethname.HostVethName(inv.conf.VethPrefix, inv.k8s.PodNamespace, inv.k8s.PodName, i)
	}
	ifs, err := podnet.OwnInterfaces(args.ContainerID, names)
	if err != nil {
		return podnet.Pod{}, err
	}
	return podnet.Pod{NetNS: args.Netns, Sandbox: args.ContainerID, LockFile: inv.lockFile(), Interfaces: ifs}, nil
}

// finishReleased ends the teardown of a DEL that ipamd knows nothing of:
// an earlier DEL released the pod. When that DEL was killed midway and
// the runtime gives no prevResult, the routes through the host veths
// marked as the sandbox's show what it left; the route to an address
// goes last (see podnet.HostTeardown.Finish), so it is there while any
// rule of the address is. A failure fails the DEL: what is left keeps
// its route, so the runtime's retry finds it again, and nothing else
// would ever remove it.
func (inv *invocation) finishReleased(ctx context.Context, td *podnet.HostTeardown, args *entry.Args, prevErr error) error {
	if prevErr == nil {
		return td.Close()
	}
	own, err := inv.ownPod(args)
	if err != nil || len(own.Interfaces) == 0 {
		if err != nil {
			inv.log.Warn("could not look for host veths marked as the sandbox's", "error", err)
		}
		inv.closeTeardown(td)
		return nil
	}
	kept, err := td.Finish(ctx, own)
	logKept(inv.log, kept...)
	if err != nil {
		return err
	}
	inv.log.Warn("removed what an earlier DEL of the sandbox left", "interfaces", len(own.Interfaces))
	return nil
}

// closeTeardown ends a teardown that ipamd's answer leaves nothing more
// for; what the early part could not remove only needs saying.
func (inv *invocation) closeTeardown(td *podnet.HostTeardown) {
	if err := td.Close(); err != nil {
		inv.log.Warn("removing the pod's host routes failed", "error", err)
	}
}

// teardownFromPrevResult undoes a regular pod's wiring from the result its
// ADD printed or, without a usable one, from the host veths marked as the
// sandbox's. It never fails DEL: cause says why ipamd was not used.
func (inv *invocation) teardownFromPrevResult(ctx context.Context, td *podnet.HostTeardown, args *entry.Args, prev podnet.Pod, prevErr, cause error) {
	log := inv.log.With("ipamdError", cause.Error())
	if prevErr != nil {
		own, err := inv.ownPod(args)
		if err != nil || len(own.Interfaces) == 0 {
			inv.closeTeardown(td)
			log.Warn("ipamd unavailable; nothing torn down", "reason", prevErr.Error(), "node", err)
			return
		}
		// An ADD that printed no result (killed midway): its host veth's
		// mark shows what it wired.
		log.Warn("ipamd unavailable and "+prevErr.Error()+"; tearing down what the sandbox's marked host veths route", "interfaces", len(own.Interfaces))
		prev = own
	}
	kept, err := td.FinishUnconfirmed(ctx, prev)
	logKept(log, kept...)
	if err != nil {
		log.Warn("tearing down from prevResult failed", "error", err)
		return
	}
	log.Info("ipamd unavailable; pod network removed using prevResult")
}

// teardownFromReply removes the wiring of the addresses ipamd released
// that the early teardown did not already remove.
func (inv *invocation) teardownFromReply(ctx context.Context, td *podnet.HostTeardown, args *entry.Args, reply *ipamclient.DelNetworkReply) error {
	meta := reply.IpAllocationMetadata
	if len(meta) == 0 {
		inv.closeTeardown(td)
		inv.log.Warn("ipamd released no address for the pod")
		_, prevErr := inv.prevPod(args)
		return inv.delOrphanBranch(ctx, args, prevErr, "ipamd released no address for the pod")
	}
	vlan := int(reply.PodVlanId)
	ifs, err := podInterfaces(meta, inv.conf.VethPrefix, args.IfName, inv.k8s)
	if err != nil {
		inv.closeTeardown(td)
		return err
	}
	pod := podnet.Pod{NetNS: args.Netns, Sandbox: args.ContainerID, LockFile: inv.lockFile(), Interfaces: ifs}
	if vlan == 0 {
		kept, err := td.Finish(ctx, pod)
		logKept(inv.log, kept...)
		return err
	}
	inv.closeTeardown(td)
	if args.Netns == "" {
		return nil
	}
	pod.Interfaces = ifs[:1]
	kept, err := podnet.TeardownBranch(ctx, pod, vlan)
	logKept(inv.log, kept)
	return err
}
