package ipamd

import (
	"context"
	"log/slog"

	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
)

// rewireReadopted gives the pods whose pending address a CIDR of card c
// took back (an evicted pod's address EC2 handed the node again, or a
// restored one whose CIDR came late) the rules a fresh ADD would, to the
// table of the ENI now holding the address: the eviction deleted their
// rules, or they name the table of an ENI that is gone. The pod's own
// veth and route never changed.
func rewireReadopted(ctx context.Context, c *poolManager, host HostNetwork, log *slog.Logger) {
	asgs := c.store.Readopted()
	if len(asgs) == 0 {
		return
	}
	pods := make([]networkutils.PodRule, 0, len(asgs))
	for _, a := range asgs {
		pods = append(pods, networkutils.PodRule{IP: a.Addr, Table: a.RouteTableID})
		log.Info("a pod whose address was on no ENI holds it on one again; its rules now name that ENI's table",
			"key", a.Key.String(), "ip", a.Addr, "eni", a.ENIID, "table", a.RouteTableID, "card", c.index)
	}
	if err := host.RestorePodRules(ctx, pods); err != nil {
		log.Warn("could not give the pods back on an ENI their rules", "card", c.index, "pods", len(pods), "err", err)
	}
}
