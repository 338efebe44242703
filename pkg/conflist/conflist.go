// Package conflist renders 10-aws.conflist, the CNI configuration list the
// entrypoint writes to the host once ipamd is healthy (docs/compatibility.md,
// "Conflist template"). The field names, order and string-typed values match
// upstream's template (misc/10-aws.conflist) so kubelet, containerd and
// upstream's plugin read it unchanged.
package conflist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// FileName is the conflist's name in the host CNI config directory.
const FileName = "10-aws.conflist"

// Egress ranges of the egress-cni plugin.
const (
	// IPv6 cluster: pods get IPv4 egress through this link-local range.
	EgressV4Subnet  = "169.254.172.0/22"
	EgressV4Dst     = "0.0.0.0/0"
	EgressV4DataDir = "/run/cni/v6pd/egress-v4-ipam"
	// IPv4 cluster: pods get IPv6 egress through this ULA range.
	EgressV6Subnet  = "fd00::ac:00/118"
	EgressV6Dst     = "::/0"
	EgressV6DataDir = "/run/cni/v4pd/egress-v6-ipam"
)

// Config is everything the conflist depends on.
type Config struct {
	VethPrefix         string
	MTU                int    // POD_MTU, else AWS_VPC_ENI_MTU
	MTUText            string // MTU as the variable spells it ("09001"), written as upstream's entrypoint does; empty: MTU
	PodSGEnforcingMode string
	PluginLogFile      string
	PluginLogLevel     string
	// Egress configures the egress-cni plugin; nil leaves it out of the
	// chain (e.g. the image has no egress-cni binary).
	Egress *Egress
	// Bandwidth appends the bandwidth plugin (ENABLE_BANDWIDTH_PLUGIN).
	Bandwidth bool
	// DisablePodIPv6 appends the tuning plugin turning IPv6 off in pods
	// (DISABLE_POD_V6).
	DisablePodIPv6 bool
}

// Egress configures the egress-cni plugin.
type Egress struct {
	// IPv6Cluster selects IPv4 egress for IPv6 pods; otherwise IPv6 egress
	// for IPv4 pods.
	IPv6Cluster   bool
	Enabled       bool
	RandomizeSNAT string // prng, hashrandom or none
	NodeIP        string // IMDS local-ipv4 (IPv6 cluster) or ipv6; may be empty when disabled
	LogFile       string
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.VethPrefix == "" {
		errs = append(errs, errors.New("conflist: veth prefix is empty"))
	}
	if c.MTU <= 0 {
		errs = append(errs, fmt.Errorf("conflist: mtu %d is not positive", c.MTU))
	}
	if n, err := strconv.Atoi(c.MTUText); c.MTUText != "" && (err != nil || n != c.MTU) {
		errs = append(errs, fmt.Errorf("conflist: mtu text %q is not mtu %d", c.MTUText, c.MTU))
	}
	if c.Egress != nil && c.Egress.Enabled && c.Egress.NodeIP == "" {
		errs = append(errs, errors.New("conflist: egress plugin enabled without a node IP"))
	}
	if c.Egress != nil && c.Egress.NodeIP != "" && net.ParseIP(c.Egress.NodeIP) == nil {
		errs = append(errs, fmt.Errorf("conflist: egress node IP %q is not an IP address", c.Egress.NodeIP))
	}
	return errors.Join(errs...)
}

// The JSON shapes. Struct field order is the output order.
type (
	list struct {
		CNIVersion   string `json:"cniVersion"`
		Name         string `json:"name"`
		DisableCheck bool   `json:"disableCheck"`
		Plugins      []any  `json:"plugins"`
	}
	awsCNI struct {
		Name               string          `json:"name"`
		Type               string          `json:"type"`
		VethPrefix         string          `json:"vethPrefix"`
		MTU                string          `json:"mtu"`
		PodSGEnforcingMode string          `json:"podSGEnforcingMode"`
		PluginLogFile      string          `json:"pluginLogFile"`
		PluginLogLevel     string          `json:"pluginLogLevel"`
		Capabilities       map[string]bool `json:"capabilities"`
	}
	egressCNI struct {
		Name           string     `json:"name"`
		Type           string     `json:"type"`
		MTU            string     `json:"mtu"`
		Enabled        string     `json:"enabled"`
		RandomizeSNAT  string     `json:"randomizeSNAT"`
		NodeIP         string     `json:"nodeIP"`
		IPAM           egressIPAM `json:"ipam"`
		PluginLogFile  string     `json:"pluginLogFile"`
		PluginLogLevel string     `json:"pluginLogLevel"`
	}
	egressIPAM struct {
		Type    string                `json:"type"`
		Ranges  [][]map[string]string `json:"ranges"`
		Routes  []map[string]string   `json:"routes"`
		DataDir string                `json:"dataDir"`
	}
	portmap struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
		SNAT         bool            `json:"snat"`
	}
)

// Render returns the conflist JSON, indented with two spaces: the
// substituted template, or with bandwidth or tuning chained the template
// re-encoded as upstream's entrypoint writes it then (reencode.go).
func Render(c Config) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Bandwidth || c.DisablePodIPv6 {
		return reencode(c)
	}
	mtu := c.mtuText()
	plugins := []any{awsCNI{
		Name:               "aws-cni",
		Type:               "aws-cni",
		VethPrefix:         c.VethPrefix,
		MTU:                mtu,
		PodSGEnforcingMode: c.PodSGEnforcingMode,
		PluginLogFile:      c.PluginLogFile,
		PluginLogLevel:     c.PluginLogLevel,
		Capabilities:       map[string]bool{"io.kubernetes.cri.pod-annotations": true},
	}}
	if e := c.Egress; e != nil {
		subnet, dst, dataDir := egressRange(e)
		plugins = append(plugins, egressCNI{
			Name:          "egress-cni",
			Type:          "egress-cni",
			MTU:           mtu,
			Enabled:       fmt.Sprint(e.Enabled),
			RandomizeSNAT: e.RandomizeSNAT,
			NodeIP:        e.NodeIP,
			IPAM: egressIPAM{
				Type:    "host-local",
				Ranges:  [][]map[string]string{{{"subnet": subnet}}},
				Routes:  []map[string]string{{"dst": dst}},
				DataDir: dataDir,
			},
			PluginLogFile:  e.LogFile,
			PluginLogLevel: c.PluginLogLevel,
		})
	}
	plugins = append(plugins, portmap{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}, SNAT: true})
	// Upstream substitutes values into the template as they are: '&', '<'
	// and '>' (legal in a log file's path) stay themselves, not \u0026.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(list{CNIVersion: "0.4.0", Name: "aws-cni", DisableCheck: true, Plugins: plugins}); err != nil {
		return nil, fmt.Errorf("conflist: %w", err)
	}
	return b.Bytes(), nil // Encode ends it with a newline, as the template
}

// mtuText is the plugins' "mtu" value.
func (c Config) mtuText() string {
	if c.MTUText != "" {
		return c.MTUText
	}
	return strconv.Itoa(c.MTU)
}

// egressRange returns the egress plugin's subnet, route and data directory.
func egressRange(e *Egress) (subnet, dst, dataDir string) {
	if e.IPv6Cluster {
		return EgressV4Subnet, EgressV4Dst, EgressV4DataDir
	}
	return EgressV6Subnet, EgressV6Dst, EgressV6DataDir
}

// disableIPv6Sysctls are the tuning plugin's settings for DISABLE_POD_V6.
func disableIPv6Sysctls() map[string]string {
	return map[string]string{
		"net.ipv6.conf.all.disable_ipv6":     "1",
		"net.ipv6.conf.default.disable_ipv6": "1",
		"net.ipv6.conf.lo.disable_ipv6":      "1",
	}
}
