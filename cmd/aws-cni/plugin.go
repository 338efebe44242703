package main

import (
	"log/slog"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
	"github.com/vpc-cni/vpc-cni/pkg/ipamclient"
)

// plugin holds what the commands take from the process environment.
type plugin struct {
	getenv func(string) string
}

// invocation is one command's parsed input.
type invocation struct {
	conf        *config
	k8s         k8sArgs
	log         *slog.Logger
	openLog     func()
	close       func()
	ipamdSocket string
	npaSocket   string
}

// checkEnv validates the runtime's environment before the CNI library
// reads it: CNI_IFNAME of the commands that carry one.
func checkEnv(getenv func(string) string) *types.Error {
	switch getenv("CNI_COMMAND") {
	case "ADD", "DEL", "CHECK":
		return validateIfName(getenv("CNI_IFNAME"))
	}
	return nil
}

// command runs one CNI command on the parsed input, with its log open for
// the command's whole run.
func (p *plugin) command(run func(*invocation, *entry.Args) error) func(*entry.Args) error {
	return func(args *entry.Args) error {
		inv, err := p.begin(args)
		if err != nil {
			return err
		}
		defer inv.close()
		return run(inv, args)
	}
}

// begin parses the netconf and CNI_ARGS and opens the log.
func (p *plugin) begin(args *entry.Args) (*invocation, error) {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return nil, err
	}
	k, err := parseK8sArgs(args.Args)
	if err != nil {
		return nil, err
	}
	log, openLog, closeLog := newLogger(conf.LogFile, conf.LogLevel)
	log = log.With("containerID", args.ContainerID, "pod", k.PodNamespace+"/"+k.PodName, "ifname", args.IfName)
	for _, w := range conf.Warnings {
		log.Warn(w)
	}
	return &invocation{
		conf:        conf,
		k8s:         k,
		log:         log,
		openLog:     openLog,
		close:       closeLog,
		ipamdSocket: firstSet(conf.IpamdSocket, p.getenv(ipamdSocketEnv), defaultIpamdSocket),
		npaSocket:   firstSet(conf.NPASocket, p.getenv(npaSocketEnv), defaultNPASocket),
	}, nil
}

// lockFileName is the file of the pod locks, beside ipamd's socket
// (/var/run/aws-node on a node): the directory exists wherever ipamd runs
// and is the node's, not a pod's.
const lockFileName = "aws-cni.lock"

// lockFile is the path of the pod locks (see pkg/podnet): an ADD's host
// wiring and a DEL's ownership checks and teardown of one pod never
// interleave.
func (inv *invocation) lockFile() string {
	return filepath.Join(filepath.Dir(inv.ipamdSocket), lockFileName)
}

func firstSet(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func (inv *invocation) addRequest(args *entry.Args) *ipamclient.AddNetworkRequest {
	return &ipamclient.AddNetworkRequest{
		// ClientVersion stays empty: upstream's ipamd compares it with its
		// own version, which its builds leave empty (docs/compatibility.md, "gRPC between plugin and ipamd").
		K8SPodName:                 inv.k8s.PodName,
		K8SPodNamespace:            inv.k8s.PodNamespace,
		K8SPodInfraContainerId:     inv.k8s.InfraContainer,
		Netns:                      args.Netns,
		IfName:                     args.IfName,
		NetworkName:                inv.conf.Name,
		ContainerId:                args.ContainerID,
		RequiresMultiNicAttachment: inv.conf.MultiNIC,
		PodUID:                     inv.k8s.PodUID,
	}
}

func (inv *invocation) delRequest(args *entry.Args, reason string) *ipamclient.DelNetworkRequest {
	return &ipamclient.DelNetworkRequest{
		K8SPodName:             inv.k8s.PodName,
		K8SPodNamespace:        inv.k8s.PodNamespace,
		K8SPodInfraContainerId: inv.k8s.InfraContainer,
		K8SPodUid:              inv.k8s.PodUID,
		Reason:                 reason,
		IfName:                 args.IfName,
		NetworkName:            inv.conf.Name,
		ContainerId:            args.ContainerID,
	}
}
