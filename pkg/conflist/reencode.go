package conflist

import (
	"encoding/json"
	"fmt"
	"net"
)

// When it chains bandwidth or tuning, upstream's entrypoint does not write
// the substituted template: it decodes the list into its own netconf type
// and encodes that again (docs/compatibility.md, "Conflist template"). The
// bytes then differ from the template's, and a node switched to us must get
// the same file: each plugin's keys in that type's order, empty strings and
// keys the type lacks (portmap's snat) left out, addresses in Go's
// canonical form, and no newline at the end.

// reencodedConf is one plugin entry in the re-encoded order. Every field is
// left out when empty.
type reencodedConf struct {
	Name               string            `json:"name,omitempty"`
	Type               string            `json:"type,omitempty"`
	Capabilities       map[string]bool   `json:"capabilities,omitempty"`
	IPAM               *reencodedIPAM    `json:"ipam,omitempty"`
	Sysctl             map[string]string `json:"sysctl,omitempty"`
	Enabled            string            `json:"enabled,omitempty"`
	NodeIP             string            `json:"nodeIP,omitempty"`
	VethPrefix         string            `json:"vethPrefix,omitempty"`
	PodSGEnforcingMode string            `json:"podSGEnforcingMode,omitempty"`
	RandomizeSNAT      string            `json:"randomizeSNAT,omitempty"`
	MTU                string            `json:"mtu,omitempty"`
	PluginLogFile      string            `json:"pluginLogFile,omitempty"`
	PluginLogLevel     string            `json:"pluginLogLevel,omitempty"`
}

type reencodedIPAM struct {
	Type    string                `json:"type,omitempty"`
	Routes  []map[string]string   `json:"routes,omitempty"`
	DataDir string                `json:"dataDir,omitempty"`
	Ranges  [][]map[string]string `json:"ranges"`
}

type reencodedList struct {
	CNIVersion   string           `json:"cniVersion,omitempty"`
	Name         string           `json:"name,omitempty"`
	DisableCheck bool             `json:"disableCheck,omitempty"`
	Plugins      []*reencodedConf `json:"plugins,omitempty"`
}

// reencode returns the list as upstream writes it with bandwidth or tuning
// chained. c is valid.
func reencode(c Config) ([]byte, error) {
	mtu := c.mtuText()
	plugins := []*reencodedConf{{
		Name: "aws-cni", Type: "aws-cni",
		Capabilities:       map[string]bool{"io.kubernetes.cri.pod-annotations": true},
		VethPrefix:         c.VethPrefix,
		PodSGEnforcingMode: c.PodSGEnforcingMode,
		MTU:                mtu,
		PluginLogFile:      c.PluginLogFile,
		PluginLogLevel:     c.PluginLogLevel,
	}}
	if e := c.Egress; e != nil {
		subnet, dst, dataDir := egressRange(e)
		plugins = append(plugins, &reencodedConf{
			Name: "egress-cni", Type: "egress-cni",
			IPAM: &reencodedIPAM{
				Type:    "host-local",
				Routes:  []map[string]string{{"dst": canonicalCIDR(dst)}},
				DataDir: dataDir,
				Ranges:  [][]map[string]string{{{"subnet": canonicalCIDR(subnet)}}},
			},
			Enabled:        fmt.Sprint(e.Enabled),
			NodeIP:         canonicalIP(e.NodeIP),
			RandomizeSNAT:  e.RandomizeSNAT,
			MTU:            mtu,
			PluginLogFile:  e.LogFile,
			PluginLogLevel: c.PluginLogLevel,
		})
	}
	plugins = append(plugins, &reencodedConf{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}})
	if c.Bandwidth {
		plugins = append(plugins, &reencodedConf{Type: "bandwidth", Capabilities: map[string]bool{"bandwidth": true}})
	}
	if c.DisablePodIPv6 {
		plugins = append(plugins, &reencodedConf{Type: "tuning", Sysctl: disableIPv6Sysctls()})
	}
	b, err := json.MarshalIndent(reencodedList{CNIVersion: "0.4.0", Name: "aws-cni", DisableCheck: true, Plugins: plugins}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("conflist: %w", err)
	}
	return b, nil
}

// canonicalCIDR writes a CIDR as Go prints it, keeping its address
// unmasked: fd00::ac:00/118 becomes fd00::ac:0/118.
func canonicalCIDR(s string) string {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		return s // our own constants: never
	}
	n.IP = ip
	return n.String()
}

// canonicalIP writes an address as Go prints it; "" stays "".
func canonicalIP(s string) string {
	if ip := net.ParseIP(s); ip != nil {
		return ip.String()
	}
	return s
}
