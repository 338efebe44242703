package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin"
	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
)

// cmdDel removes the pod's egress veth, SNAT chain and address. It needs no
// prevResult and no earlier ADD, and succeeds when the namespace is gone:
// every piece is found from the container ID and interface name. It
// removes only what this attachment's ADD made: a DEL with another
// sandbox's CNI_NETNS or a wrong CNI_IFNAME leaves other attachments be.
func cmdDel(args *cniplugin.Args) error {
	conf, log, closeLog, err := load(args)
	if err != nil {
		return err
	}
	defer closeLog()
	if !conf.Enabled && !egress.StoreExists(conf.Network, conf.DataDir) {
		return nil // never enabled on this node: nothing to remove
	}
	store, err := egress.OpenStore(conf.Network, conf.DataDir, conf.Range)
	if err != nil {
		return cniplugin.Error(ErrWiring, "egress address store", err)
	}
	defer store.Close()
	inflight, err := waitForAdd(conf, args.ContainerID)
	if err != nil {
		log.Error("DEL could not take the container's in-flight lock", "err", err)
		return err
	}
	defer inflight.Release()
	held, elsewhere, err := store.Owned(args.ContainerID, args.IfName)
	if err != nil {
		return cniplugin.Error(ErrWiring, "egress address store", err)
	}
	// The chain is per container: while the container holds an address
	// under another interface name, it is that attachment's too, and this
	// DEL removes only its own jumps (removePod).
	ownChain := !elsewhere
	if !ownChain && len(held) == 0 {
		log.Warn("DEL of an attachment holding no egress address while the container holds one under another interface; leaving the container's SNAT chain")
	}
	// Opened once, as ADD does: reached by the runtime's path at each
	// step, a path swapped meanwhile for a FIFO blocked the DEL until the
	// runtime killed it, and one swapped for the node's namespace would
	// have it act there.
	netns, err := podnet.PinNetNS(args.Netns)
	podNS := ""
	if err == nil {
		defer netns.Close()
		podNS = netns.Path()
	} else {
		// Gone, no namespace, the node's own, or a path that never
		// resolves: a DEL failing on it would fail on every retry and
		// hold the address for ever. The pod's end of the veth goes with
		// the node's.
		log.Info("CNI_NETNS names no pod namespace; removing the node's side only", "reason", err)
	}
	if err := removePod(args, conf, podNS, held, ownChain); err != nil {
		if netns != nil {
			err = errors.New(netns.Named(err.Error()))
		}
		log.Error("removing egress wiring failed", "err", err)
		return cniplugin.Error(ErrWiring, "removing egress wiring failed", err)
	}
	if err := store.Release(args.ContainerID, args.IfName); err != nil {
		log.Error("releasing egress address failed", "err", err)
		return cniplugin.Error(ErrWiring, "releasing egress address failed", err)
	}
	log.Info("egress removed")
	return nil
}

// delWaitsForAdd bounds how long a DEL waits for its container's ADD: an
// ADD of egress-cni takes well under a second, and the runtime retries a
// DEL that failed.
const delWaitsForAdd = 30 * time.Second

// waitForAdd takes the container's in-flight lock, which its ADD holds
// while it runs, so that a DEL overlapping the ADD (kubelet's DEL of a
// sandbox whose ADD timed out) removes what the ADD made instead of
// running before the ADD makes it. Held until the DEL is done, it also
// keeps a GC from the container meanwhile.
func waitForAdd(conf *egress.Config, containerID string) (*egress.InFlight, error) {
	ctx, cancel := context.WithTimeout(context.Background(), delWaitsForAdd)
	defer cancel()
	l, err := egress.WaitInFlight(ctx, conf.Network, conf.DataDir, egress.ChainName(conf.Family, conf.Network, containerID))
	// The slot is shared: its holder may be this container's ADD, a GC,
	// or another container's ADD or DEL hashed to the same slot.
	if errors.Is(err, egress.ErrInFlight) {
		return nil, types.NewError(types.ErrTryAgainLater,
			fmt.Sprintf("an ADD, DEL or GC holding container %s's in-flight lock slot is still running after %s", containerID, delWaitsForAdd), err.Error())
	}
	if err != nil {
		return nil, cniplugin.Error(ErrWiring, fmt.Sprintf("egress in-flight lock of container %s", containerID), err)
	}
	return l, nil
}

// removePod removes the attachment's egress veth and, when ownChain, the
// container's SNAT chain, whichever exist; held are the addresses the
// attachment holds, by which a pod link upstream's plugin made is known;
// podNS is the path of the pod's namespace. When the chain is another
// attachment's too, only the jumps from held go, and the chain with them
// if no other jump is left: a jump kept from an address released would
// SNAT the next pod given it through this container's chain.
func removePod(args *cniplugin.Args, conf *egress.Config, podNS string, held []netip.Addr, ownChain bool) error {
	var errs []error
	switch {
	case ownChain:
		errs = append(errs, egress.RemoveSNAT(conf.Family, conf.Network, args.ContainerID))
	case len(held) > 0:
		errs = append(errs, egress.RemoveJumps(conf.Family, conf.Network, args.ContainerID, held))
	}
	errs = append(errs, egress.Teardown(conf.Family, podNS, egress.HostVethName(args.ContainerID, args.IfName), held))
	return errors.Join(errs...)
}
