package main

import (
	"fmt"
	"time"

	ipampool "github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// ipCooldown is how long ipamd keeps a deleted pod's address before
// handing it out again (IP_COOLDOWN_PERIOD's default, docs/compatibility.md).
const ipCooldown = 30 * time.Second

// churnCap is the arithmetic that caps sustained churn on one node: every
// DEL leaves its address cooling for ipCooldown, so at most held − live
// addresses can be cooling at once and the rate cannot exceed
// (held − live) / ipCooldown, whatever ipamd does. held is what the ENIs
// can hold: max pods bounds only the addresses held for pods, not the
// cooling ones (docs/compatibility.md, "Warm-pool arithmetic").
type churnCap struct {
	ENIs, PerENI int // the instance type's limits: ENIs, secondary slots per ENI
	ENILimit     int // addresses the ENIs can hold (a slot is a /28 in PD)
	MaxPods      int // ipamd's max pods without an API server
	Held         int // addresses the node can hold, cooling ones included: ENILimit
	Rate         float64
}

// churnCapFor computes the cap for a node of the given type running
// without an API server, as the bench's churn nodes do: ipamd takes max
// pods from the instance type (MaxENIs × (IPv4PerENI − 1) + 2), which
// limits the addresses it holds for pods (assigned or available), while
// the cooling set may take the rest of the ENIs' slots.
func churnCapFor(instanceType string, live int, pd bool) (churnCap, bool) {
	it, ok := vpcsim.LookupInstanceType(instanceType)
	if !ok || it.MaxENIs <= 0 || it.IPv4PerENI <= 1 {
		return churnCap{}, false
	}
	c := churnCap{ENIs: it.MaxENIs, PerENI: it.IPv4PerENI - 1}
	c.MaxPods = c.ENIs*c.PerENI + 2
	c.ENILimit = c.ENIs * c.PerENI
	if pd {
		c.ENILimit *= ipampool.IPsPerPrefix
	}
	c.Held = c.ENILimit
	c.Rate = float64(max(c.Held-live, 0)) / ipCooldown.Seconds()
	return c, true
}

// churnCapText says, for a figure's method, why its churn cannot exceed
// the cap.
func churnCapText(instanceType string, live int, pd bool) string {
	c, ok := churnCapFor(instanceType, live, pd)
	if !ok {
		return ""
	}
	cool := fmt.Sprintf("every DEL leaves its address cooling %.0f s, never handed out early", ipCooldown.Seconds())
	rate := fmt.Sprintf("sustained churn is capped at (%d - %d live) / %.0f s = %.1f pairs/s", c.Held, live, ipCooldown.Seconds(), c.Rate)
	if !pd {
		return fmt.Sprintf("Cap in secondary-IP mode: %s; a %s holds at most %d ENIs x %d = %d secondary addresses, so %s "+
			"whatever ipamd does (figure 13 churns with prefix delegation).", cool, instanceType, c.ENIs, c.PerENI, c.ENILimit, rate)
	}
	return fmt.Sprintf("Cap: %s. Max pods (%d here, no API server: %d x %d + 2) limits the addresses ipamd holds for pods, "+
		"assigned or available, not the cooling ones (docs/compatibility.md, \"Warm-pool arithmetic\"), so the cooling set may "+
		"fill the ENIs: %d ENIs x %d prefixes x %d = %d addresses, and %s.",
		cool, c.MaxPods, c.ENIs, c.PerENI, c.ENIs, c.PerENI, ipampool.IPsPerPrefix, c.ENILimit, rate)
}
