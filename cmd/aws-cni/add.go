package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
	"github.com/vpc-cni/vpc-cni/pkg/ipamclient"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// releaseReason tells ipamd why an ADD gives its addresses back.
const releaseReason = "SetupNSFailed"

// add asks ipamd for the pod's addresses, wires the pod and prints the
// result (docs/compatibility.md, "Per-pod state"). err is a named result on purpose: the deferred
// rollback sees every error returned after ipamd assigned addresses, so no
// path can leak them.
func (inv *invocation) add(args *entry.Args) (err error) {
	if err := inv.conf.PrevResultErr; err != nil {
		return invalidConfig("prevResult", err.Error())
	}
	// Before anything else: nothing may be created in, or rolled back
	// from, the node's own namespace or a path that is no namespace. The
	// namespace checked is held open and wired through its descriptor,
	// never through the path again, which may name another by then.
	netns, err := podnet.PinNetNS(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, "CNI_NETNS: "+err.Error(), "")
	}
	defer netns.Close()
	if err := checkAddInput(args.IfName, args.ContainerID, inv.k8s); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), addTimeout)
	defer cancel()

	client := &ipamclient.Client{Socket: inv.ipamdSocket}
	// The request goes out first, from this thread: no goroutine, so no
	// second thread to start. While ipamd answers, make the veth pair: it
	// is the costliest step of the wiring and needs no address. Until
	// plan.wire takes it over, every error return discards it.
	asked := client.StartAddNetwork(ctx, inv.addRequest(args))
	early := inv.earlyVeth(args, netns)
	defer func() {
		if err != nil && early != nil {
			if derr := early.Discard(); derr != nil {
				err = inv.withCleanup(err, derr)
			}
		}
	}()
	// The log file is needed at the end in any case: open it now, while
	// ipamd may still be answering.
	inv.openLog()
	reply, md, err := asked.Wait()
	if err != nil {
		return addError(inv.ipamdSocket, err)
	}
	if !reply.Success {
		return types.NewError(ErrNoAddress, refusalMessage(md), "")
	}

	var plan *addPlan
	defer func() {
		if err != nil {
			err = inv.rollback(ctx, client, args, netns, plan, err)
		}
	}()
	plan, err = planAdd(inv.conf, args, inv.k8s, reply)
	if err != nil {
		return entry.Error(ErrIpamd, "unusable reply from ipamd", err)
	}
	if err = checkMTUFamily(inv.conf.MTU, plan.pod.Interfaces); err != nil {
		return err
	}
	plan.setLockFile(inv.lockFile())
	plan.setNetNS(netns.Path())
	plan.takeEarly(early)
	early = nil
	if err = plan.wire(ctx); err != nil {
		details := netns.Named(err.Error())
		if e := inv.vethTwinError(err, details); e != nil {
			return e
		}
		return entry.Error(ErrWiring, "wire pod network", errors.New(details))
	}
	// The result names the runtime's path: it must still name the
	// namespace wired, or the runtime would take another for the pod's.
	if err = netns.StillNamed(); err != nil {
		return types.NewError(types.ErrInvalidNetNS, "CNI_NETNS: "+err.Error(), "")
	}
	if mode := reply.NetworkPolicyMode; mode != "" {
		err = enforceNetworkPolicy(ctx, inv.npaSocket, &ipamclient.EnforceNpRequest{
			K8SPodName:        inv.k8s.PodName,
			K8SPodNamespace:   inv.k8s.PodNamespace,
			NetworkPolicyMode: mode,
			InterfaceCount:    int32(len(plan.result.IPs)),
		})
		if err != nil {
			return err
		}
		// The agent may take its whole npaTimeout, in which the path can
		// be pointed elsewhere: checked again, right before the result.
		if err = netns.StillNamed(); err != nil {
			// The agent enforces the pod's policies now, and after the
			// rollback the runtime's DEL of this sandbox finds the pod
			// unknown to ipamd: only the marker gets the agent told.
			inv.markNPAPending()
			return types.NewError(types.ErrInvalidNetNS, "CNI_NETNS: "+err.Error(), "")
		}
	}
	// A DEL of an earlier sandbox of the pod may have left the duty to
	// tell the agent the pod is gone: the agent's policies for the
	// pod's name are now this sandbox's (see deletePolicies).
	inv.clearNPAPending()
	inv.log.Info("pod added", "ips", len(plan.result.IPs), "vlan", reply.PodVlanId)
	return printResult(plan.result, inv.conf.CNIVersion)
}

// earlyVeth makes the pod's first veth pair ahead of ipamd's answer, or
// returns nil when it cannot; then the wiring makes it later and reports
// what stands in the way. The name is the one of every pod but a branch-ENI
// pod in strict mode (its host veth takes another prefix, and only ipamd's
// answer tells whether the pod has a branch ENI): the wiring replaces the
// pair of such a pod, which costs that pod the head start and one more
// pair, and nobody else anything.
func (inv *invocation) earlyVeth(args *entry.Args, netns *podnet.PinnedNetNS) *podnet.Veth {
	v, err := podnet.CreateVeth(netns.Path(), args.ContainerID,
		vethname.HostVethName(inv.conf.VethPrefix, inv.k8s.PodNamespace, inv.k8s.PodName, 0),
		vethname.ContainerIfName(args.IfName, 0), inv.conf.MTU)
	if err != nil {
		inv.log.Debug("veth pair left to the wiring", "error", netns.Named(err.Error()))
		return nil
	}
	return v
}

// rollback undoes whatever wiring exists and gives the addresses back to
// ipamd. Cleanup failures are added to the returned error's details. It
// runs on its own deadline: the ADD's may be spent (an ADD whose time ran
// out waiting for the pod lock), and the undo waits for that lock too.
func (inv *invocation) rollback(ctx context.Context, client *ipamclient.Client, args *entry.Args, netns *podnet.PinnedNetNS, plan *addPlan, cause error) error {
	var errs []error
	if plan != nil {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
		defer cancel()
		skipped, err := plan.undo(uctx)
		for _, s := range skipped {
			inv.log.Warn("rollback " + netns.Named(s))
		}
		if err != nil {
			errs = append(errs, errors.New(netns.Named(err.Error())))
		}
	}
	errs = append(errs, release(ctx, client, inv.delRequest(args, releaseReason)))
	return inv.withCleanup(cause, errors.Join(errs...))
}

// withCleanup adds a cleanup failure to the details of the original error.
func (inv *invocation) withCleanup(cause, cleanup error) error {
	if cleanup == nil {
		return cause
	}
	var ce *types.Error
	if errors.As(cause, &ce) {
		return types.NewError(ce.Code, ce.Msg, joinDetails(ce.Details, "cleanup after the failure also failed: "+cleanup.Error()))
	}
	return fmt.Errorf("%w (cleanup after the failure also failed: %w)", cause, cleanup)
}

func joinDetails(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// addPlan is everything ADD does to the kernel and prints, derived from
// ipamd's reply without side effects.
type addPlan struct {
	pod    podnet.Pod
	branch *podnet.Branch
	result *current.Result
}

func planAdd(conf *config, args *entry.Args, k k8sArgs, reply *ipamclient.AddNetworkReply) (*addPlan, error) {
	meta := reply.IpAllocationMetadata
	if len(meta) == 0 {
		return nil, errors.New("ipamd reported success but assigned no address")
	}
	vlan := int(reply.PodVlanId)
	prefix := conf.VethPrefix
	if vlan != 0 && conf.StrictSG {
		prefix = vethname.BranchPrefix
	}
	ifs, err := podInterfaces(meta, prefix, args.IfName, k)
	if err != nil {
		return nil, err
	}
	var gw net.IP
	if s := reply.PodEniSubnetGw; s != "" {
		if gw = net.ParseIP(s); gw == nil {
			return nil, fmt.Errorf("branch ENI subnet gateway %q is not an IP address", s)
		}
	}
	plan := &addPlan{
		pod:    podnet.Pod{NetNS: args.Netns, Sandbox: args.ContainerID, MTU: conf.MTU, Interfaces: ifs},
		result: buildResult(args.Netns, ifs, gw, vethname.DummyName(k.PodNamespace, k.PodName), vlan, int(meta[0].DeviceNumber)),
	}
	if vlan == 0 {
		return plan, nil
	}
	mac, err := net.ParseMAC(reply.PodEniMac)
	if err != nil {
		return nil, fmt.Errorf("branch ENI MAC %q: %w", reply.PodEniMac, err)
	}
	if gw == nil {
		return nil, errors.New("branch ENI reply lacks the subnet gateway")
	}
	// Branch pods have exactly one interface (ipamd ignores multi-NIC).
	plan.pod.Interfaces = ifs[:1]
	plan.branch = &podnet.Branch{
		Pod: plan.pod, VLANID: vlan, ENIMAC: mac, SubnetGW: gw,
		ParentIfIndex: int(reply.ParentIfIndex), Strict: conf.StrictSG,
	}
	return plan, nil
}

// checkMTUFamily refuses an MTU below IPv6's minimum for an IPv6 pod: the
// kernel would disable IPv6 on its interface. The family is known only
// from ipamd's reply.
func checkMTUFamily(mtu int, ifs []podnet.Interface) error {
	for _, ifc := range ifs {
		if ifc.Address.IP.To4() == nil && mtu < minMTUv6 {
			return invalidConfig(fmt.Sprintf("netconf mtu %d is below IPv6's minimum of %d (pod address %s)", mtu, minMTUv6, ifc.Address.IP), "")
		}
	}
	return nil
}

// setLockFile makes the wiring hold the pod lock (see pkg/podnet).
func (p *addPlan) setLockFile(path string) {
	p.pod.LockFile = path
	if p.branch != nil {
		p.branch.Pod.LockFile = path
	}
}

// setNetNS makes the wiring, and its undo, work in the namespace at path
// (a PinnedNetNS's); the result keeps naming the runtime's CNI_NETNS.
func (p *addPlan) setNetNS(path string) {
	p.pod.NetNS = path
	if p.branch != nil {
		p.branch.Pod.NetNS = path
	}
}

// takeEarly gives the pair made by earlyVeth to the wiring, which finishes
// it or, when it does not fit the pod, replaces it.
func (p *addPlan) takeEarly(v *podnet.Veth) {
	if p.branch != nil {
		p.branch.Pod.Early = v
		return
	}
	p.pod.Early = v
}

func (p *addPlan) wire(ctx context.Context) error {
	if p.branch != nil {
		return podnet.SetupBranch(ctx, *p.branch, nil)
	}
	return podnet.Setup(ctx, p.pod)
}

// undo removes what wire made; skipped names links it left alone because
// they are not the plugin's.
func (p *addPlan) undo(ctx context.Context) (skipped []string, err error) {
	if p.branch != nil {
		return podnet.UndoBranch(ctx, p.pod, p.branch.VLANID)
	}
	return podnet.Undo(ctx, p.pod)
}
