package podnet

import (
	"encoding/hex"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// sandboxMarkPrefix starts the alias (IFLA_IFALIAS) ADD gives a pod's host
// veth (docs/compatibility.md, "Plugin (aws-cni) and runtime input"). The
// veth is named after the pod, not the sandbox, so the alias is what tells
// a DEL whether the veth, and the route through it, are its sandbox's.
const sandboxMarkPrefix = "aws-cni:"

// maxAliasLen is the longest alias the kernel keeps (IFALIASZ less the
// terminating NUL).
const maxAliasLen = 255

// hashSep separates, in the mark of a container id too long for the
// alias, the id's head from the hash of the whole id. Container ids cannot
// contain '~' (the plugin's entry checks them), so such a mark never equals
// the mark of a shorter id.
const hashSep = "~"

// hashHexLen is the length of the hex FNV-1a 128 hash (the Go crypto
// packages stay out of the plugin, cmd/aws-cni/deps_test.go).
const hashHexLen = 32

// SandboxMark is the alias of the host veths of sandbox containerID:
// "aws-cni:<container id>", or, when that would exceed the kernel's 255
// bytes, "aws-cni:<the id's first 214 bytes>~<hex FNV-1a 128 of the whole
// id>". It is "" (no mark) for an empty id.
func SandboxMark(containerID string) string {
	if containerID == "" {
		return ""
	}
	if len(sandboxMarkPrefix)+len(containerID) <= maxAliasLen {
		return sandboxMarkPrefix + containerID
	}
	h := fnv.New128a()
	h.Write([]byte(containerID))
	head := containerID[:maxAliasLen-len(sandboxMarkPrefix)-len(hashSep)-hashHexLen]
	return sandboxMarkPrefix + head + hashSep + hex.EncodeToString(h.Sum(nil))
}

// IsSandboxMark reports whether alias is a mark SandboxMark made: the
// veth is then known to be that sandbox's (ipamd's orphan sweep).
func IsSandboxMark(alias string) bool {
	return strings.HasPrefix(alias, sandboxMarkPrefix)
}

// otherSandbox returns alias when it marks a host veth as another
// sandbox's than containerID's, and "" when the veth may be the
// sandbox's: it carries containerID's mark or no mark of the plugin's at
// all (a veth of upstream's plugin or of an older version, whose DEL
// behaves as before).
func otherSandbox(alias, containerID string) string {
	if !IsSandboxMark(alias) || alias == SandboxMark(containerID) {
		return ""
	}
	return alias
}

// OtherSandboxVeth returns the mark of the first of the node's host veths
// names that is marked as another sandbox's than sandbox's, "" when none
// is: the pod then has a newer sandbox, to which what is kept by the pod's
// name (its network policies) belongs.
func OtherSandboxVeth(sandbox string, names ...string) (string, error) {
	h := openHost()
	defer h.Close()
	_, mark, err := firstOtherSandbox(h, sandbox, names)
	return mark, err
}

// firstOtherSandbox returns the first of the host veths names (each looked
// up once; names not of a pod veth's shape are no pod's) that is marked as
// another sandbox's than sandbox's, with its mark; "" when none is.
func firstOtherSandbox(h *netlink.Handle, sandbox string, names []string) (name, mark string, err error) {
	for i, name := range names {
		if slices.Contains(names[:i], name) {
			continue
		}
		veth, err := lookupHostVeth(h, name, sandbox)
		if err != nil {
			return "", "", err
		}
		if veth.other != "" {
			return name, veth.other, nil
		}
	}
	return "", "", nil
}
