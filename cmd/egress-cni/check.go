package main

import (
	"errors"
	"fmt"
	"net"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin"
	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
)

// cmdCheck verifies the pod's egress wiring: its address is held, the pod
// has it on the egress interface, the node routes it to the host veth, and
// the SNAT chain and jump are in place. Every missing piece is listed.
func cmdCheck(args *cniplugin.Args) error {
	conf, _, closeLog, err := load(args)
	if err != nil {
		return err
	}
	defer closeLog()
	if !conf.Enabled {
		return nil
	}
	// As ADD: a pod with an address of the egress family got no wiring.
	if conf.PrevResultErr == nil && version.ParsePrevResult(&conf.PluginConf) == nil && conf.PrevResult != nil {
		if res, err := current.NewResultFromResult(conf.PrevResult); err == nil && hasFamily(res, conf.Family) {
			return nil
		}
	}
	store, err := egress.OpenStore(conf.Network, conf.DataDir, conf.Range)
	if err != nil {
		return cniplugin.Error(ErrWiring, "egress address store", err)
	}
	defer store.Close()
	lease, ok, err := store.Held(args.ContainerID, args.IfName)
	if err != nil {
		return cniplugin.Error(ErrCheckFailed, "egress check failed", err)
	}
	if !ok {
		return cniplugin.Error(ErrCheckFailed, "egress check failed", errors.New("no egress address held"))
	}
	var problems []string
	ip := net.IP(lease.Addr.Addr().AsSlice())
	// Pinned once, as ADD does: reached by path, a path swapped for a FIFO
	// between the check that it is a namespace and the open blocked CHECK.
	err = withPinnedNetNS(args.Netns, func() error {
		l, err := netlink.LinkByName(conf.Family.PodIfName())
		if err != nil {
			problems = append(problems, fmt.Sprintf("pod has no %s", conf.Family.PodIfName()))
			return nil
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if a.IP.Equal(ip) {
				return nil
			}
		}
		problems = append(problems, fmt.Sprintf("%s lacks %s", conf.Family.PodIfName(), lease.Addr))
		return nil
	})
	if err != nil {
		problems = append(problems, fmt.Sprintf("pod netns: %v", err))
	}
	hostVeth := egress.HostVethName(args.ContainerID, args.IfName)
	if l, err := netlink.LinkByName(hostVeth); err != nil {
		problems = append(problems, "node has no "+hostVeth)
	} else if rs, err := netlink.RouteGet(ip); err != nil || len(rs) == 0 || rs[0].LinkIndex != l.Attrs().Index {
		problems = append(problems, fmt.Sprintf("node does not route %s to %s", ip, hostVeth))
	}
	chain := egress.ChainName(conf.Family, conf.Network, args.ContainerID)
	if rules, err := egress.ChainRules(conf.Family, chain); err != nil || len(rules) < 3 {
		problems = append(problems, "SNAT chain "+chain+" missing or incomplete")
	}
	snat := egress.SNAT{Family: conf.Family, Network: conf.Network, ContainerID: args.ContainerID, PodIP: ip, NodeIP: conf.NodeIP, Mode: conf.SNAT}
	if ok, err := snat.JumpExists(); err != nil || !ok {
		problems = append(problems, "no POSTROUTING jump to "+chain)
	}
	if len(problems) > 0 {
		return cniplugin.Error(ErrCheckFailed, "egress check failed", errors.New(strings.Join(problems, "; ")))
	}
	return nil
}

// withPinnedNetNS runs f in the namespace path names, opened once.
func withPinnedNetNS(path string, f func() error) error {
	netns, err := podnet.PinNetNS(path)
	if err != nil {
		return err
	}
	defer netns.Close()
	err = ns.WithNetNSPath(netns.Path(), func(ns.NetNS) error { return f() })
	if err != nil {
		return errors.New(netns.Named(err.Error()))
	}
	return nil
}
