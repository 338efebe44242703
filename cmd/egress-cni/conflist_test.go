package main

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/vpc-cni/vpc-cni/pkg/conflist"
	"github.com/vpc-cni/vpc-cni/pkg/egress"
)

// TestInstallerConflistDrivesEgressCNI: the conflist the installer writes
// loads in libcni with the chain aws-cni → egress-cni → portmap, and its
// egress entry, as the runtime passes it, parses to the intended mode: IPv4
// egress on for an IPv6 cluster by default (ENABLE_V4_EGRESS), the disabled
// IPv6 entry for an IPv4 cluster.
func TestInstallerConflistDrivesEgressCNI(t *testing.T) {
	for _, tc := range []struct {
		name    string
		egress  *conflist.Egress
		enabled bool
		family  egress.Family
		subnet  string
	}{
		{"IPv6 cluster, default ENABLE_V4_EGRESS", &conflist.Egress{IPv6Cluster: true, Enabled: true, RandomizeSNAT: "prng", NodeIP: "10.0.0.10"}, true, egress.V4, "169.254.172.0/22"},
		{"IPv4 cluster, ENABLE_V6_EGRESS off", &conflist.Egress{RandomizeSNAT: "prng"}, false, egress.V6, "fd00::ac:0/118"},
		{"IPv4 cluster, ENABLE_V6_EGRESS on", &conflist.Egress{Enabled: true, RandomizeSNAT: "hashrandom", NodeIP: "2001:db8::10"}, true, egress.V6, "fd00::ac:0/118"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := conflist.Render(conflist.Config{VethPrefix: "eni", MTU: 9001, PodSGEnforcingMode: "strict", PluginLogLevel: "DEBUG", Egress: tc.egress})
			if err != nil {
				t.Fatal(err)
			}
			l, err := libcni.ConfListFromBytes(b)
			if err != nil {
				t.Fatalf("libcni rejects the conflist: %v", err)
			}
			var chain []string
			for _, p := range l.Plugins {
				chain = append(chain, p.Network.Type)
			}
			if !slices.Equal(chain, []string{"aws-cni", "egress-cni", "portmap"}) {
				t.Errorf("chain %v", chain)
			}
			entry, err := renderedEgressEntry(tc.egress)
			if err != nil {
				t.Fatal(err)
			}
			// The runtime injects the list's name and version.
			entry["name"], entry["cniVersion"] = l.Name, l.CNIVersion
			stdin, _ := json.Marshal(entry)
			c, err := egress.ParseConfig(stdin)
			if err != nil {
				t.Fatalf("egress-cni rejects its conflist entry: %v\n%s", err, stdin)
			}
			if c.Enabled != tc.enabled || c.Family != tc.family || c.Range.Subnet.String() != tc.subnet || c.Network != "aws-cni" || c.MTU != 9001 {
				t.Errorf("parsed %+v", c)
			}
		})
	}
}
