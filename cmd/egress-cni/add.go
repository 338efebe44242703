package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin"
	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
)

// load parses the netconf and opens the logger.
func load(args *cniplugin.Args) (*egress.Config, *slog.Logger, func(), error) {
	conf, err := egress.ParseConfig(args.StdinData)
	if err != nil {
		return nil, nil, nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid egress-cni configuration", err.Error())
	}
	log, closeLog := newLogger(conf.LogFile, conf.LogLevel)
	log = log.With("containerID", args.ContainerID, "netns", args.Netns, "ifname", args.IfName, "family", conf.Family.String())
	return conf, log, closeLog, nil
}

func cmdAdd(args *cniplugin.Args) error {
	conf, log, closeLog, err := load(args)
	if err != nil {
		return err
	}
	defer closeLog()
	if err := conf.PrevResultErr; err != nil {
		return types.NewError(types.ErrDecodingFailure, "invalid prevResult", err.Error())
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "invalid prevResult", err.Error())
	}
	if conf.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "egress-cni must be called as a chained plugin (no prevResult)", "")
	}
	// Before anything is made: the wiring runs inside CNI_NETNS, and in
	// the node's own namespace it would replace the node's default route
	// and turn off IPv6 on its eth0. The CNI library refuses that
	// namespace only after the plugin ran, when the pass-through has
	// printed its result already, so it is refused here even when
	// disabled; other paths only matter to the wiring. The namespace
	// checked is held open and wired through its descriptor, never
	// through the path again, which may name another (the node's) by then.
	netns, err := podnet.PinNetNS(args.Netns)
	if err != nil && (conf.Enabled || errors.Is(err, podnet.ErrOwnNetNS)) {
		return types.NewError(types.ErrInvalidNetNS, "CNI_NETNS: "+err.Error(), "")
	}
	defer netns.Close()
	if !conf.Enabled {
		return types.PrintResult(conf.PrevResult, conf.CNIVersion)
	}
	res, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "invalid prevResult", err.Error())
	}
	// A pod the main plugin gave an address of the egress family (dual
	// stack) has that family's egress already; wiring it would turn the
	// pod's IPv6 off (IPv6 egress) or replace its IPv4 default route.
	if hasFamily(res, conf.Family) {
		log.Info("the pod has an address of the egress family; passing the result through")
		return types.PrintResult(conf.PrevResult, conf.CNIVersion)
	}
	if err := checkIfName(args.IfName, conf.Family); err != nil {
		return err
	}
	if err := checkContainerID(args.ContainerID, conf.Network); err != nil {
		return err
	}
	// Refused here, not when parsing: a DEL of this netconf must still work.
	if conf.Family == egress.V6 && conf.MTU < egress.MinIPv6MTU {
		return types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("mtu %d: IPv6 egress needs at least %d", conf.MTU, egress.MinIPv6MTU), "")
	}

	store, err := egress.OpenStore(conf.Network, conf.DataDir, conf.Range)
	if err != nil {
		return cniplugin.Error(ErrWiring, "egress address store", err)
	}
	defer store.Close()
	// Held until the pod is wired: a GC meanwhile leaves this container be.
	inflight, err := egress.LockInFlight(conf.Network, conf.DataDir, egress.ChainName(conf.Family, conf.Network, args.ContainerID))
	if err != nil {
		return cniplugin.Error(ErrWiring, fmt.Sprintf("egress in-flight lock of container %s", args.ContainerID), err)
	}
	defer inflight.Release()
	taken, err := egress.RoutedAddrs(conf.Family, conf.Range)
	if err != nil {
		return cniplugin.Error(ErrWiring, "egress node routes", err)
	}
	lease, err := store.Acquire(args.ContainerID, args.IfName, taken)
	if err != nil {
		log.Error("no egress address", "err", err)
		if errors.Is(err, egress.ErrExhausted) {
			return cniplugin.Error(ErrNoAddress, fmt.Sprintf("no %s egress address left in %s", conf.Family, conf.Range.Subnet), err)
		}
		return cniplugin.Error(ErrWiring, "egress address store", err)
	}
	ifs, err := wire(args, conf, lease, netns)
	if err != nil {
		var changed netnsChanged
		isChanged := errors.As(err, &changed)
		noMainIf := errors.Is(err, egress.ErrNoMainIf)
		err = errors.New(netns.Named(err.Error()))
		log.Error("egress wiring failed; undoing it", "address", lease.Addr, "err", err)
		// Leave no half-wired pod: what wire did, and the address. The
		// SNAT chain is per container: while another attachment of the
		// container (multus attaching the network twice) holds an address,
		// the chain is that attachment's too: only this ADD's jump goes.
		_, elsewhere, ownedErr := store.Owned(args.ContainerID, args.IfName)
		ownChain := ownedErr == nil && !elsewhere
		undo := errors.Join(ownedErr, removePod(args, conf, netns.Path(), []netip.Addr{lease.Addr.Addr()}, ownChain), store.Release(args.ContainerID, args.IfName))
		if undo != nil {
			log.Error("undoing egress wiring failed", "err", netns.Named(undo.Error()))
		}
		if isChanged {
			return types.NewError(types.ErrInvalidNetNS, "CNI_NETNS: "+changed.Error(), "")
		}
		if noMainIf {
			return types.NewError(types.ErrInvalidEnvironmentVariables,
				fmt.Sprintf("CNI_IFNAME %s %s: IPv6 egress turns IPv6 off on the pod's main interface", args.IfName, egress.ErrNoMainIf), "")
		}
		return cniplugin.Error(ErrWiring, "egress wiring failed", err)
	}
	log.Info("egress wired", "address", lease.Addr, "hostVeth", ifs.Host.Name)
	res.Interfaces = append(res.Interfaces,
		&current.Interface{Name: ifs.Host.Name, Mac: ifs.Host.HardwareAddr.String()},
		&current.Interface{Name: ifs.Pod.Name, Mac: ifs.Pod.HardwareAddr.String(), Sandbox: args.Netns},
	)
	return types.PrintResult(res, conf.CNIVersion)
}

// netnsChanged is wire's error when CNI_NETNS no longer names the
// namespace wired.
type netnsChanged struct{ error }

// wire creates the egress veth in the pinned namespace podNS and the
// pod's SNAT. Before it returns it checks that CNI_NETNS still names podNS:
// the result names the runtime's path, and would otherwise describe a
// namespace the ADD did not wire.
func wire(args *cniplugin.Args, conf *egress.Config, lease egress.Lease, podNS *podnet.PinnedNetNS) (egress.Interfaces, error) {
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return egress.Interfaces{}, fmt.Errorf("node netns: %w", err)
	}
	defer hostNS.Close()
	w := egress.Wiring{
		Family:   conf.Family,
		PodNS:    podNS.Path(),
		MainIf:   args.IfName,
		HostVeth: egress.HostVethName(args.ContainerID, args.IfName),
		MTU:      conf.MTU,
		Lease:    lease,
		Routes:   conf.Routes,
		HostNS:   hostNS,
	}
	ifs, err := w.Setup()
	if err != nil {
		return ifs, err
	}
	snat := egress.SNAT{
		Family:      conf.Family,
		Network:     conf.Network,
		ContainerID: args.ContainerID,
		PodIP:       lease.Addr.Addr().AsSlice(),
		NodeIP:      conf.NodeIP,
		Mode:        conf.SNAT,
	}
	if err := snat.Apply(); err != nil {
		// Setup's sysctl is the one change of the pod removePod does not undo.
		return ifs, errors.Join(err, w.RestoreMainIf(ifs))
	}
	if err := podNS.StillNamed(); err != nil {
		return ifs, errors.Join(netnsChanged{err}, w.RestoreMainIf(ifs))
	}
	return ifs, nil
}

// hasFamily reports whether the main plugin's result gives the pod a
// routable (not link-local) address of family f.
func hasFamily(res *current.Result, f egress.Family) bool {
	for _, ip := range res.IPs {
		a := ip.Address.IP
		if a.IsGlobalUnicast() && (a.To4() != nil) == (f == egress.V4) {
			return true
		}
	}
	return false
}
