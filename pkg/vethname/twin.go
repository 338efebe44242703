package vethname

import (
	"strconv"
	"strings"
)

// Twin returns the other pod interface whose host veth name equals that of
// interface index of pod, whatever the namespace and prefix: upstream's
// hash key of interface i>0 of pod "x", "<ns>.x.<i>", is the key of
// interface 0 of pod "x.<i>" (a valid pod name). The names are kept as
// upstream's, so such a pair of pods must not share a node: the plugin
// refuses the second one's ADD (docs/compatibility.md, "Interface
// names"). ok is false when interface index of pod has no twin.
func Twin(pod string, index int) (twinPod string, twinIndex int, ok bool) {
	if index > 0 {
		return pod + "." + strconv.Itoa(index), 0, true
	}
	dot := strings.LastIndexByte(pod, '.')
	if dot < 1 {
		return "", 0, false
	}
	i, err := strconv.Atoi(pod[dot+1:])
	// Only the form strconv.Itoa writes: "x.01" hashes as no interface.
	if err != nil || i < 1 || strconv.Itoa(i) != pod[dot+1:] {
		return "", 0, false
	}
	return pod[:dot], i, true
}
