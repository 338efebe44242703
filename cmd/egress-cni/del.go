package main

import (
	"github.com/vpc-cni/vpc-cni/pkg/cniplugin"
	"github.com/vpc-cni/vpc-cni/pkg/egress"
)

// cmdDel removes the pod's egress veth, SNAT chain and address. It needs no
// prevResult and no earlier ADD, and succeeds when the namespace is gone:
// every piece is found from the container ID and interface name.
func cmdDel(args *cniplugin.Args) error {
	conf, log, closeLog, err := load(args)
	if err != nil {
		return err
	}
	defer closeLog()
	if !conf.Enabled && !egress.StoreExists(conf.Network, conf.DataDir) {
		return nil // never enabled on this node: nothing to remove
	}
	if err := removePod(args, conf); err != nil {
		log.Error("removing egress wiring failed", "err", err)
		return cniplugin.Error(ErrWiring, "removing egress wiring failed", err)
	}
	store, err := egress.OpenStore(conf.Network, conf.DataDir, conf.Range)
	if err != nil {
		return cniplugin.Error(ErrWiring, "egress address store", err)
	}
	defer store.Close()
	if err := store.Release(args.ContainerID, args.IfName); err != nil {
		log.Error("releasing egress address failed", "err", err)
		return cniplugin.Error(ErrWiring, "releasing egress address failed", err)
	}
	log.Info("egress removed")
	return nil
}
