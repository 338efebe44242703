package ipamd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
)

// hostSync programs the node's host networking (rules, SNAT, connmark)
// from the node's facts: at Init and when the VPC's CIDRs change. It owns
// no state.
type hostSync struct {
	cfg     config.Config
	node    *nodeState
	host    HostNetwork
	observe *observer
	retry   time.Duration // first pause of programAtStart (Intervals.HostRetry)
	log     *slog.Logger
}

// program reconciles the host's networking with the node's facts now.
func (h *hostSync) program(ctx context.Context) error {
	mac, err := net.ParseMAC(h.node.id.PrimaryMAC)
	if err != nil {
		return fmt.Errorf("ipamd init: primary MAC %q: %w", h.node.id.PrimaryMAC, err)
	}
	v6Egress := h.cfg.EnableV6Egress && !h.cfg.EnableIPv6
	if v6Egress && !h.node.id.PrimaryIPv6.IsValid() {
		h.log.Warn("ENABLE_V6_EGRESS=true but the node has no IPv6 address in instance metadata: IPv6 egress disabled")
		v6Egress = false
	}
	res, err := h.host.ReconcileHost(ctx, networkutils.HostConfig{
		PrimaryMAC:           mac,
		PrimaryIPv4:          h.node.id.LocalIPv4,
		VPCCIDRs:             h.node.vpcCIDRs.get(),
		ExcludeSNATCIDRs:     h.cfg.ExcludeSNATCIDRs,
		ExternalSNAT:         h.cfg.ExternalSNAT,
		RandomizeSNAT:        networkutils.RandomizeSNAT(h.cfg.RandomizeSNAT),
		VethPrefix:           h.cfg.VethPrefix,
		ENIMTU:               h.cfg.ENIMTU,
		NodePortSupport:      h.cfg.NodePortSupport,
		Connmark:             h.cfg.Connmark,
		ExternalServiceCIDRs: h.cfg.ExternalServiceCIDRs,
		PodENIStrict:         h.cfg.EnablePodENI && h.cfg.PodSGEnforcingMode == "strict",
		V6Egress:             v6Egress,
		IPv6:                 h.cfg.EnableIPv6,
	})
	h.observe.host(res, err)
	if err != nil {
		return fmt.Errorf("ipamd init: host networking: %w", err)
	}
	if len(res.Changes) > 0 {
		h.log.Info("host networking programmed", "changes", len(res.Changes), "backend", res.Backend)
	}
	return nil
}
