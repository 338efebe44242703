package vethname

import (
	"fmt"
	"strings"
)

// IFNAMSIZ-1: the longest interface name the kernel accepts.
const maxIfNameLen = 15

// MaxPrefixLen is the longest veth prefix: the prefix plus SuffixLen hex
// characters must fit in an interface name. Upstream's entrypoint enforces
// the same limit of 4.
const MaxPrefixLen = maxIfNameLen - SuffixLen

// reservedPrefixes collide with names the node already uses: eth* are the
// ENIs, lo is loopback and vlan is the branch-ENI pod prefix. Upstream's
// entrypoint refuses the same three.
var reservedPrefixes = []string{"eth", "lo", BranchPrefix}

// ValidatePrefix reports whether p can prefix host veth names. The error
// names the input and the rule it breaks.
func ValidatePrefix(p string) error {
	if p == "" {
		// An empty prefix would make the "<prefix>+" iptables interface
		// match cover every interface of the node.
		return fmt.Errorf("veth prefix %q: must not be empty", p)
	}
	if len(p) > MaxPrefixLen {
		return fmt.Errorf("veth prefix %q: %d characters, at most %d allowed so that prefix plus %d hash characters fit in %d",
			p, len(p), MaxPrefixLen, SuffixLen, maxIfNameLen)
	}
	for _, r := range p {
		if r == '/' || r == ':' || r == '%' || r <= ' ' || r >= 0x7f {
			return fmt.Errorf("veth prefix %q: character %q is not allowed in an interface name", p, r)
		}
	}
	for _, bad := range reservedPrefixes {
		if p == bad {
			return fmt.Errorf("veth prefix %q: reserved (%s are used by the node)", p, strings.Join(reservedPrefixes, ", "))
		}
	}
	return nil
}
