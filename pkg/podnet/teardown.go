package podnet

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Teardown removes the node-side routes and rules of pod's addresses
// (docs/compatibility.md, "Per-pod state"). The veth pairs are left alone:
// they live in the pod's namespace and the kernel removes them with it, off
// the DEL path, as upstream does (docs/compatibility.md, "Plugin (aws-cni)
// and runtime input"). The route to each pod is deleted only through the
// pod's own host veth, so a late DEL never removes the route of a newer pod
// that reuses the address; nor, through a host veth marked as another
// sandbox's (see Pod.Sandbox), that sandbox's route and rules. Anything
// already gone is not an error, so DEL can run any number of times, with or
// without the namespace.
func Teardown(ctx context.Context, pod Pod) error {
	_, err := teardown(ctx, pod)
	return err
}

// teardown is Teardown; kept says which addresses it left to another
// sandbox, for the log.
func teardown(ctx context.Context, pod Pod) (kept []string, err error) {
	host := openHost()
	defer host.Close()
	lock := lockPod(ctx, pod.LockFile, pod.lockName(), delLockWait)
	defer lock.unlock()
	var errs []error
	for _, ifc := range pod.Interfaces {
		if ifc.Address == nil {
			continue
		}
		k, err := removeOwnHostRoutes(ctx, host, pod.LockFile, ifc, pod.Sandbox)
		if k != "" {
			kept = append(kept, k)
		}
		errs = append(errs, err)
	}
	return kept, errors.Join(errs...)
}

// Undo reverses a Setup that failed part way: the node-side routes and
// rules, then every veth pair of pod that is provably the plugin's (a veth
// in the pod namespace whose peer is the expected host veth). A link that
// is not is left untouched and its reason returned in skipped, for the
// log: an interface of another pod, the node's own eth0, or lo.
func Undo(ctx context.Context, pod Pod) (skipped []string, err error) {
	kept, terr := teardown(ctx, pod)
	skipped, err = deletePairs(pod)
	return append(kept, skipped...), errors.Join(terr, err)
}

// deletePairs deletes the pod's veth pairs that ownedPair confirms. A
// missing, own or non-netns namespace means there is nothing of ours in it.
func deletePairs(pod Pod) ([]string, error) {
	if err := VerifyNetNS(pod.NetNS); err != nil {
		if errors.Is(err, ErrNoNetNS) {
			return nil, nil
		}
		return []string{err.Error()}, nil
	}
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return nil, fmt.Errorf("open host netns: %w", err)
	}
	defer hostNS.Close()
	podNS, err := ns.GetNS(pod.NetNS)
	if err != nil {
		return nil, fmt.Errorf("open pod netns %s: %w", pod.NetNS, err)
	}
	defer podNS.Close()
	var skipped []string
	var errs []error
	for _, ifc := range pod.Interfaces {
		if ifc.HostVeth == "" || ifc.ContainerIf == "" {
			continue
		}
		link, reason, err := ownedPair(hostNS, podNS, ifc)
		switch {
		case err != nil:
			errs = append(errs, err)
		case link == nil && reason != "":
			skipped = append(skipped, fmt.Sprintf("left %s in %s alone: %s", ifc.ContainerIf, pod.NetNS, reason))
		case link != nil:
			// Deleting one end removes both.
			if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("delete veth %s: %w", ifc.HostVeth, err))
			}
		}
	}
	return skipped, errors.Join(errs...)
}
