// Command aws-cni is the CNI plugin of vpc-cni, a drop-in replacement for
// the Amazon VPC CNI's plugin. The container runtime executes it once per
// pod sandbox ADD, DEL, CHECK, STATUS and GC: it asks ipamd (one gRPC call
// over a unix socket) for the pod's addresses and wires the pod's network
// namespace to the node with pkg/podnet.
//
// ipamd is reached at /var/run/aws-node/ipamd.sock and the network policy
// agent at /var/run/aws-node/npa.sock; the netconf fields ipamdSocket and
// npaSocket, or else the environment variables VPC_CNI_IPAMD_SOCKET and
// VPC_CNI_NPA_SOCKET, override them (for tests and cnitool runs). Calls
// carry deadlines below the runtime's: ADD 20 s (ipamd may refill an empty
// pool within it), DEL 10 s, network policy agent and STATUS 2 s. Error
// codes are listed in errors.go.
//
// The plugin runs on every pod's critical path, so its import graph is kept
// to the gRPC client, the CNI library and netlink.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/vpc-cni/vpc-cni/pkg/cniplugin"
)

func main() {
	// The CNI library checks CNI_IFNAME too, but its messages do not name
	// the variable; ours do, so they come first.
	if err := checkEnv(os.Getenv); err != nil {
		_ = err.Print()
		os.Exit(1)
	}
	p := &plugin{getenv: os.Getenv}
	cniplugin.Main("aws-cni", skel.CNIFuncs{
		Add:    p.command((*invocation).add),
		Del:    p.command((*invocation).del),
		Check:  p.command((*invocation).check),
		Status: p.command((*invocation).status),
		GC:     gc,
	})
}
