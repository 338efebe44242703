package networkutils

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// withDefaults fills the zero values that mean "default".
func (c HostConfig) withDefaults() HostConfig {
	if c.RandomizeSNAT == "" {
		c.RandomizeSNAT = RandomizePRNG
	}
	if c.ENIMTU == 0 {
		c.ENIMTU = DefaultMTU
	}
	if c.Connmark == 0 {
		c.Connmark = DefaultConnmark
	}
	if c.IPTablesPath == "" {
		c.IPTablesPath = "iptables"
	}
	c.VPCCIDRs = normalizePrefixes(c.VPCCIDRs)
	c.ExcludeSNATCIDRs = normalizePrefixes(c.ExcludeSNATCIDRs)
	c.ExternalServiceCIDRs = normalizePrefixes(c.ExternalServiceCIDRs)
	return c
}

// normalizePrefixes masks every prefix to its network address and drops
// repeats, keeping the first occurrence's position.
func normalizePrefixes(in []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range in {
		p = p.Masked()
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// Validate reports every problem in c, each naming the setting.
func (c HostConfig) Validate() error {
	var errs []error
	if len(c.PrimaryMAC) == 0 {
		errs = append(errs, errors.New("host config: primary ENI MAC is empty"))
	}
	ipv4Only := func(name string, ps []netip.Prefix) {
		for _, p := range ps {
			if !p.IsValid() || !p.Addr().Is4() {
				errs = append(errs, fmt.Errorf("host config: %s: %q is not an IPv4 CIDR", name, p))
			}
		}
	}
	ipv4Only("VPC CIDRs", c.VPCCIDRs)
	ipv4Only("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", c.ExcludeSNATCIDRs)
	ipv4Only("AWS_EXTERNAL_SERVICE_CIDRS", c.ExternalServiceCIDRs)
	if !c.IPv6 && !c.ExternalSNAT {
		if !c.PrimaryIPv4.IsValid() || !c.PrimaryIPv4.Is4() {
			errs = append(errs, fmt.Errorf("host config: primary IPv4 %q is not an IPv4 address (needed as the SNAT source)", c.PrimaryIPv4))
		}
		if len(c.VPCCIDRs) == 0 {
			errs = append(errs, errors.New("host config: no VPC CIDRs: without them every destination would be SNATed"))
		}
	}
	switch c.RandomizeSNAT {
	case "", RandomizePRNG, RandomizeHashRandom, RandomizeNone:
	default:
		errs = append(errs, fmt.Errorf("host config: AWS_VPC_K8S_CNI_RANDOMIZESNAT %q: want prng, hashrandom or none", c.RandomizeSNAT))
	}
	// An empty prefix would make `-i +` match every interface.
	if c.VethPrefix == "" || len(c.VethPrefix) > 14 || strings.ContainsAny(c.VethPrefix, " /\t\n\"*+") {
		errs = append(errs, fmt.Errorf("host config: AWS_VPC_K8S_CNI_VETHPREFIX %q: want 1-14 characters valid in an interface name", c.VethPrefix))
	}
	if c.ENIMTU != 0 && (c.ENIMTU < 576 || c.ENIMTU > 9001) {
		errs = append(errs, fmt.Errorf("host config: AWS_VPC_ENI_MTU %d outside 576..9001", c.ENIMTU))
	}
	switch c.ConnmarkBackend {
	case ConnmarkAuto, ConnmarkIPTables, ConnmarkNFTables:
	default:
		errs = append(errs, fmt.Errorf("host config: connmark backend %q: want iptables, nftables or empty (auto)", c.ConnmarkBackend))
	}
	if c.IPv6 && c.V6Egress {
		errs = append(errs, errors.New("host config: ENABLE_V6_EGRESS applies to IPv4 clusters only, but ENABLE_IPv6 is set"))
	}
	return errors.Join(errs...)
}
