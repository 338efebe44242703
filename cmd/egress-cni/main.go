// Command egress-cni is the chained CNI plugin that gives single-stack pods
// egress on the other IP family (docs/compatibility.md, "IPv6 and
// egress-cni"): IPv4 egress for IPv6 pods (ENABLE_V4_EGRESS, a node-local
// 169.254.172.0/22 address per pod SNATed to the node's primary IPv4) or
// IPv6 egress for IPv4 pods (ENABLE_V6_EGRESS, a ULA from fd00::ac:00/118
// SNATed to the node's IPv6). It runs after aws-cni in 10-aws.conflist and
// answers ADD, DEL, CHECK, STATUS and GC in every spec version aws-cni does.
//
// The plugin runs on every pod's critical path, so its import graph is kept
// to the CNI library, netlink and go-iptables. Error codes are in errors.go.
package main

import (
	"github.com/vpc-cni/vpc-cni/pkg/cniplugin"
)

func main() {
	cniplugin.Main("egress-cni", cniplugin.Funcs{
		Add:    cmdAdd,
		Del:    cmdDel,
		Check:  cmdCheck,
		Status: func(*cniplugin.Args) error { return nil },
		GC:     cmdGC,
	})
}
