package main

import (
	"errors"
	"fmt"
)

// Limits are the instance-type facts max-pods depends on.
type Limits struct {
	ENIs       int // ENIs of the default network card
	IPv4PerENI int // IPv4 addresses per ENI, the primary included
	VCPUs      int // only needed by the "auto" prefix-delegation cap
}

// Mode is how ipamd hands out pod addresses.
type Mode struct {
	PrefixDelegation bool // each secondary slot is a /28 (16 addresses)
	CustomNetworking bool // the primary ENI carries no pod addresses
}

func (m Mode) String() string {
	switch {
	case m.PrefixDelegation && m.CustomNetworking:
		return "custom-networking+prefix-delegation"
	case m.PrefixDelegation:
		return "prefix-delegation"
	case m.CustomNetworking:
		return "custom-networking"
	default:
		return "secondary-ip"
	}
}

// onType is the mode ipamd runs in on an instance type: asked for prefix
// delegation on a type without prefixes (not Nitro, not bare metal), it
// uses secondary IPs (docs/compatibility.md, ENABLE_PREFIX_DELEGATION).
func (m Mode) onType(prefixes bool) Mode {
	if !prefixes {
		m.PrefixDelegation = false
	}
	return m
}

// Cap limits the result. The EKS calculator's rule, used by "auto": with
// prefix delegation the address count is so large that kubelet's own limits
// bind first, so cap at 110 below 30 vCPUs and at 250 from 30 vCPUs up.
// Secondary-IP results are never capped by "auto" (c5.4xlarge stays 234).
type Cap struct {
	Auto  bool // the rule above
	Fixed int  // > 0: cap every mode at this value
}

// Prefix-delegation caps of the "auto" rule.
const (
	smallCap      = 110
	largeCap      = 250
	capVCPUsLimit = 30 // vCPUs from which largeCap applies
	// hostNetworkPods are aws-node and kube-proxy, which need no pod IP.
	hostNetworkPods = 2
	addrsPerPrefix  = 16
)

// MaxPods returns ENIs × (IPv4 per ENI − 1) × (16 with PD) + 2, with one ENI
// fewer under custom networking, then the cap.
func MaxPods(l Limits, m Mode, c Cap) (int, error) {
	if l.ENIs < 1 || l.IPv4PerENI < 1 {
		return 0, fmt.Errorf("instance limits ENIs=%d IPv4PerENI=%d: both must be at least 1", l.ENIs, l.IPv4PerENI)
	}
	enis := l.ENIs
	if m.CustomNetworking {
		enis-- // pods never use the primary ENI
	}
	perSlot := 1
	if m.PrefixDelegation {
		perSlot = addrsPerPrefix
	}
	n := enis*(l.IPv4PerENI-1)*perSlot + hostNetworkPods
	switch {
	case c.Fixed > 0:
		n = min(n, c.Fixed)
	case c.Auto && m.PrefixDelegation:
		if l.VCPUs <= 0 {
			return 0, errors.New("the automatic prefix-delegation cap needs the vCPU count: pass -vcpus, or -cap none / -cap <n>")
		}
		if l.VCPUs < capVCPUsLimit {
			n = min(n, smallCap)
		} else {
			n = min(n, largeCap)
		}
	}
	return n, nil
}
