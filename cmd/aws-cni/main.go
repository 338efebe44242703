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
// to its own gRPC client (pkg/ipamclient), its own entry point
// (pkg/cniplugin/entry, not the CNI library's skel), the CNI library's
// types and netlink.
package main

import (
	"os"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
)

func main() {
	// entry.Main checks CNI_IFNAME too, with the CNI library's messages,
	// which do not name the variable; ours do, so they come first.
	if err := checkEnv(os.Getenv); err != nil {
		_ = err.Print()
		os.Exit(1)
	}
	p := &plugin{getenv: os.Getenv}
	entry.Main("aws-cni", entry.Funcs{
		Add:    p.command((*invocation).add),
		Del:    p.command((*invocation).del),
		Check:  p.command((*invocation).check),
		Status: p.command((*invocation).status),
		GC:     gc,
	})
}
