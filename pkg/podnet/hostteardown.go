package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// HostTeardown is a DEL's node-side teardown split around ipamd's answer:
// StartTeardown removes, while ipamd answers, what provably belongs to the
// pod; Finish removes the rest once the answer is in. One netlink socket
// serves both steps.
type HostTeardown struct {
	h    *netlink.Handle
	done []Interface
	errs []error
}

// StartTeardown deletes the route to each of pod's addresses through the
// pod's own host veth (docs/compatibility.md, "Per-pod state"). When that
// route was there the address was still this pod's, so its rules go too.
// When it was not (the namespace took the veth with it, or DEL runs again)
// the rules wait for Finish and ipamd's answer: a rule names only an
// address, and a late DEL must not delete the rules of a newer pod that was
// given the address since. The caller must call Finish or Close.
func StartTeardown(ctx context.Context, pod Pod) *HostTeardown {
	t := &HostTeardown{h: openHost()}
	lock := lockPod(ctx, pod.LockFile, pod.lockName(), delLockWait)
	defer lock.unlock()
	for _, ifc := range pod.Interfaces {
		if ctx.Err() != nil {
			break
		}
		if ifc.Address == nil || ifc.HostVeth == "" {
			continue
		}
		if err := t.removeOwn(ctx, ifc, pod); err != nil {
			t.errs = append(t.errs, err)
		}
	}
	return t
}

// Finish removes the node-side routes and rules of pod's interfaces that
// StartTeardown did not fully remove, as Teardown does, and closes the
// socket. It returns StartTeardown's errors too; kept says, for the log,
// which addresses it left to another sandbox of the pod.
func (t *HostTeardown) Finish(ctx context.Context, pod Pod) (kept []string, err error) {
	lock := lockPod(ctx, pod.LockFile, pod.lockName(), delLockWait)
	defer lock.unlock()
	return t.finish(ctx, pod)
}

func (t *HostTeardown) finish(ctx context.Context, pod Pod) (kept []string, err error) {
	defer t.h.Close()
	errs := t.errs
	for _, ifc := range pod.Interfaces {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		if ifc.Address == nil || t.removed(ifc) {
			continue
		}
		k, err := removeOwnHostRoutes(ctx, t.h, pod.LockFile, ifc, pod.Sandbox)
		if k != "" {
			kept = append(kept, k)
		}
		errs = append(errs, err)
	}
	return kept, errors.Join(errs...)
}

// FinishUnconfirmed is Finish for a DEL that ipamd did not answer
// (docs/compatibility.md, "Plugin (aws-cni) and runtime input"): nothing
// then says pod's addresses are still the pod's. An address the node
// routes through another link was given to a newer pod since (this DEL
// came late), so its rules and route are left to that pod, as Finish
// leaves those of an address routed to the host veth of another sandbox
// of the pod; kept says which, for the log.
func (t *HostTeardown) FinishUnconfirmed(ctx context.Context, pod Pod) (kept []string, err error) {
	lock := lockPod(ctx, pod.LockFile, pod.lockName(), delLockWait)
	defer lock.unlock()
	var rest []Interface
	for _, ifc := range pod.Interfaces {
		if ifc.Address == nil || t.removed(ifc) {
			continue
		}
		dev, err := routedElsewhere(t.h, hostPrefix(ifc.Address.IP), ifc.HostVeth)
		if err != nil {
			t.errs = append(t.errs, err)
			continue
		}
		if dev != "" {
			kept = append(kept, fmt.Sprintf("%s is routed to %s, not to %s: its rules are another pod's", ifc.Address.IP, dev, ifc.HostVeth))
			continue
		}
		rest = append(rest, ifc)
	}
	pod.Interfaces = rest
	more, err := t.finish(ctx, pod)
	return append(kept, more...), err
}

// routedElsewhere names the link other than dev through which main routes
// exactly pod, or "" when there is none.
func routedElsewhere(h *netlink.Handle, pod *net.IPNet, dev string) (string, error) {
	routes, err := nldump.Retry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(family(pod), &netlink.Route{Dst: pod, Table: hostcontract.MainTable},
			netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return "", fmt.Errorf("list routes to %s in main: %w", pod, err)
	}
	if testHookRoutesListed != nil {
		testHookRoutesListed()
	}
	for _, r := range routes {
		if r.LinkIndex == 0 {
			continue
		}
		link, err := h.LinkByIndex(r.LinkIndex)
		var gone netlink.LinkNotFoundError
		if errors.As(err, &gone) {
			// The link went since the listing, its route with it: the
			// kernel removing the pair with a pod's namespace.
			continue
		}
		if err != nil {
			return "", fmt.Errorf("link %d of the route to %s: %w", r.LinkIndex, pod, err)
		}
		if name := link.Attrs().Name; name != dev {
			return name, nil
		}
	}
	return "", nil
}

// Close ends a teardown that has nothing more to remove and returns
// StartTeardown's errors.
func (t *HostTeardown) Close() error {
	t.h.Close()
	return errors.Join(t.errs...)
}

func (t *HostTeardown) removed(ifc Interface) bool {
	for _, d := range t.done {
		if d.HostVeth == ifc.HostVeth && d.Address.IP.Equal(ifc.Address.IP) && HostTable(d.RouteTable) == HostTable(ifc.RouteTable) {
			return true
		}
	}
	return false
}

// removeOwn removes ifc's rules, then its route, when main routes ifc's
// address through the pod's own host veth, which may be sandbox's: the
// route proves the address is still the pod's. The route goes last so
// that a DEL killed in between leaves its retry that proof (ipamd then
// answers that it knows no such pod, and nothing else tells the rules
// are the pod's). The address's lock keeps the check and the removal
// together against the ADD of a pod given the address since.
func (t *HostTeardown) removeOwn(ctx context.Context, ifc Interface, p Pod) error {
	lock := lockAddress(ctx, p.LockFile, ifc.Address.IP, delLockWait)
	defer lock.unlock()
	pod := hostPrefix(ifc.Address.IP)
	veth, err := lookupHostVeth(t.h, ifc.HostVeth, p.Sandbox)
	if err != nil || veth.index == 0 || veth.other != "" {
		return err
	}
	routed, err := routedVia(t.h, pod, veth.index, hostcontract.MainTable)
	if err != nil || !routed {
		return err
	}
	ownerChecked()
	if err := rulesThenRoute(t.h, ifc.Address, HostTable(ifc.RouteTable), veth.index, ifc.HostVeth); err != nil {
		return err
	}
	t.done = append(t.done, ifc)
	return nil
}

// hostVeth is what the node has under a pod's host veth name.
type hostVeth struct {
	// index is the veth's ifindex, 0 when no veth of a pod's name shape
	// (see isPodVethName) has the name: a route through any other link
	// (the node's eth0, named by a bogus prevResult) is never a pod's.
	index int
	// other is the veth's mark when it names another sandbox than the
	// caller's (see otherSandbox): the veth, and what is routed through
	// it, are that sandbox's.
	other string
}

// lookupHostVeth finds the host veth named dev for a teardown of sandbox.
func lookupHostVeth(h *netlink.Handle, dev, sandbox string) (hostVeth, error) {
	if !isPodVethName(dev) {
		return hostVeth{}, nil
	}
	link, err := h.LinkByName(dev)
	if isNotFound(err) {
		return hostVeth{}, nil
	}
	if err != nil {
		return hostVeth{}, fmt.Errorf("find host veth %s: %w", dev, err)
	}
	if _, ok := link.(*netlink.Veth); !ok {
		return hostVeth{}, nil
	}
	return hostVeth{index: link.Attrs().Index, other: otherSandbox(link.Attrs().Alias, sandbox)}, nil
}

// isPodVethName reports whether name has the shape of a pod's host veth
// (pkg/vethname): a prefix of 1 to 4 characters, then 11 lowercase hex
// digits.
func isPodVethName(name string) bool {
	n := len(name) - vethname.SuffixLen
	if n < 1 || n > vethname.MaxPrefixLen {
		return false
	}
	for _, c := range name[n:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
