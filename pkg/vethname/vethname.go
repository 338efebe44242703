// Package vethname derives the interface names the plugin gives a pod. The
// names are part of the node's state that must survive a switch between
// upstream aws-node and vpc-cni, so they follow upstream's hash exactly.
package vethname

import (
	"encoding/hex"
	"strconv"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
)

// SuffixLen is the number of hex characters of the hash kept in a name.
const SuffixLen = 11

// DefaultPrefix is the host veth prefix when the netconf sets none.
const DefaultPrefix = hostcontract.VethPrefix

// BranchPrefix is the host veth prefix of branch-ENI pods in strict mode;
// it keeps them out of the node's SNAT and connmark rules.
const BranchPrefix = "vlan"

// Suffix returns the first 11 hex characters of SHA-1("<namespace>.<pod>").
func Suffix(namespace, pod string) string {
	return hash(namespace + "." + pod)
}

// HostVethName returns the host-side veth name of interface index of a pod:
// prefix + 11 hex of SHA-1("<ns>.<pod>") for index 0 and of
// SHA-1("<ns>.<pod>.<index>") for the additional interfaces of multi-NIC pods.
func HostVethName(prefix, namespace, pod string, index int) string {
	key := namespace + "." + pod
	if index > 0 {
		key += "." + strconv.Itoa(index)
	}
	return prefix + hash(key)
}

// DummyName is the name of the bookkeeping interface recorded (never
// created) in the CNI result; DEL reads it when ipamd is unreachable.
func DummyName(namespace, pod string) string {
	return "dummy" + Suffix(namespace, pod)
}

// ContainerIfName returns the pod-side name of interface index: the
// runtime's CNI_IFNAME for index 0 and mNicIf<index> for the others.
func ContainerIfName(ifName string, index int) string {
	if index == 0 {
		return ifName
	}
	return "mNicIf" + strconv.Itoa(index)
}

func hash(s string) string {
	sum := sha1Sum([]byte(s))
	return hex.EncodeToString(sum[:])[:SuffixLen]
}
