package main

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
)

// checkIfName refuses, on ADD, a CNI_IFNAME the egress wiring cannot be
// kept or found by. DEL does not check it: a DEL that fails is retried by
// the runtime for ever.
func checkIfName(ifName string, f egress.Family) *types.Error {
	// The pod's main interface bearing the egress interface's name would
	// be taken for a stale egress link and replaced, leaving the pod
	// without the address the main plugin gave it.
	if ifName == f.PodIfName() {
		return types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("CNI_IFNAME %s is the name of egress-cni's own %s interface", ifName, f), "")
	}
	// IPv6 egress turns IPv6 off on the main interface through its sysctl
	// directory: "lo" would take ::1 from the pod, "all" and "default"
	// IPv6 from every interface, now or later. No pod interface of the
	// main plugin's has these names (the kernel refuses "all" and
	// "default"; "lo" is the loopback).
	if slices.Contains([]string{"lo", "all", "default"}, ifName) {
		return types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("CNI_IFNAME %q is the loopback or a per-interface sysctl directory's own entry, no pod's main interface", ifName), "")
	}
	// The address is stored under the name as it came, and a runtime's GC
	// names its valid attachments in JSON, which carries no such name:
	// the pod's address would be released as a stale one's.
	if !utf8.ValidString(ifName) {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_IFNAME %q is not valid UTF-8", ifName), "")
	}
	// The kernel expands '%' in a new link's name ("eth%d" becomes eth0):
	// no interface has such a name for the wiring to work beside.
	if strings.Contains(ifName, "%") {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_IFNAME %q contains '%%', which the kernel reads as a pattern", ifName), "")
	}
	return nil
}

// maxComment is the longest comment iptables keeps (XT_MAX_COMMENT_LEN,
// 256 with the terminating NUL).
const maxComment = 255

// checkContainerID refuses, on ADD, a CNI_CONTAINERID too long for the
// comment of the pod's SNAT rules (egress.Comment), by which GC tells
// networks apart: iptables-restore, legacy and nft alike, accepts a
// longer comment and cuts it to 255 characters. It also refuses a
// netconf name that alone leaves no room for one
// (code 7 naming it; refused here, not when parsing, so that a DEL of the
// netconf still works).
func checkContainerID(id, network string) *types.Error {
	if len(egress.Comment(network, id)) <= maxComment {
		return nil
	}
	most := maxComment - len(egress.Comment(network, ""))
	if most < 1 {
		return types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("netconf name %q is %d characters long: the SNAT rules' comment (name and container ID) holds %d and would have no room for any container ID", network, len(network), maxComment), "")
	}
	return types.NewError(types.ErrInvalidEnvironmentVariables,
		fmt.Sprintf("CNI_CONTAINERID is %d characters long, at most %d allowed: the SNAT rules' comment (network %q and container ID) holds %d", len(id), most, network, maxComment), "")
}
