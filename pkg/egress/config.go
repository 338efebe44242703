// Package egress gives single-stack pods egress on the other IP family, the
// work of the egress-cni chained plugin (docs/compatibility.md, "IPv6 and
// egress-cni"): a second veth into the pod with a node-local address from a
// host-local-style allocator, and SNAT of that address to the node's own
// address on the other family.
//
// config.go parses the plugin's entry of 10-aws.conflist once into a typed,
// validated Config.
package egress

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/containernetworking/cni/pkg/types"
)

// Family is the IP family the plugin gives the pod egress on.
type Family int

const (
	// V4 is IPv4 egress for IPv6 pods (ENABLE_V4_EGRESS).
	V4 Family = 4
	// V6 is IPv6 egress for IPv4 pods (ENABLE_V6_EGRESS).
	V6 Family = 6
)

// Per-family names, fixed by upstream's plugin so a node upgraded from it
// finds its chains and pod interfaces.
func (f Family) PodIfName() string {
	if f == V6 {
		return "v6if0"
	}
	return "v4if0"
}

// ChainPrefix is the prefix of the per-pod nat chain.
func (f Family) ChainPrefix() string {
	if f == V6 {
		return "CNI-E6-"
	}
	return "CNI-E4-"
}

func (f Family) String() string { return "IPv" + strconv.Itoa(int(f)) }

// SNATMode is randomizeSNAT: how the SNAT rule picks source ports.
type SNATMode string

const (
	SNATRandomFully SNATMode = "prng"       // --random-fully (default)
	SNATHashRandom  SNATMode = "hashrandom" // --random
	SNATNone        SNATMode = "none"
)

// Config is the parsed, validated netconf.
type Config struct {
	types.PluginConf
	// PrevResultErr says why prevResult is unusable: it is no JSON
	// object. Only ADD reads prevResult and refuses it; DEL, CHECK and GC
	// go on without it, as a failing DEL would be retried for ever.
	PrevResultErr error
	// Network is the network name (the conflist's "name"); it keys the
	// allocator's directory and the chain hash.
	Network string
	Enabled bool
	Family  Family
	MTU     int
	SNAT    SNATMode
	// NodeIP is the node's address on Family, the SNAT source. Unset when
	// disabled.
	NodeIP net.IP
	// Range, Routes and DataDir come from the host-local ipam section.
	Range   Range
	Routes  []netip.Prefix
	DataDir string

	LogFile, LogLevel string
}

// rawConf is the JSON shape; every value upstream writes is a string.
type rawConf struct {
	types.PluginConf
	// PrevResult shadows PluginConf's: decoded on its own (see
	// Config.PrevResultErr).
	PrevResult    json.RawMessage `json:"prevResult,omitempty"`
	MTU           string          `json:"mtu"`
	Enabled       string          `json:"enabled"`
	RandomizeSNAT string          `json:"randomizeSNAT"`
	NodeIP        string          `json:"nodeIP"`
	LogFile       string          `json:"pluginLogFile"`
	LogLevel      string          `json:"pluginLogLevel"`
	IPAM          *struct {
		Type   string `json:"type"`
		Subnet string `json:"subnet"`
		Ranges [][]struct {
			Subnet     string `json:"subnet"`
			RangeStart string `json:"rangeStart"`
			RangeEnd   string `json:"rangeEnd"`
			Gateway    string `json:"gateway"`
		} `json:"ranges"`
		Routes []struct {
			Dst string `json:"dst"`
		} `json:"routes"`
		DataDir string `json:"dataDir"`
	} `json:"ipam"`
}

// DefaultMTU is used when the netconf has no mtu.
const DefaultMTU = 9001

// MinIPv6MTU is IPv6's minimum link MTU (RFC 8200): the kernel refuses
// IPv6 addresses on a link below it, so v6if0 needs at least this.
const MinIPv6MTU = 1280

// ParseConfig parses stdin of an ADD, DEL, CHECK or GC.
func ParseConfig(stdin []byte) (*Config, error) {
	var raw rawConf
	if err := json.Unmarshal(stdin, &raw); err != nil {
		return nil, fmt.Errorf("egress-cni netconf: %w", err)
	}
	c := &Config{PluginConf: raw.PluginConf, Network: raw.Name, LogFile: raw.LogFile, LogLevel: raw.LogLevel}
	if len(raw.PrevResult) != 0 {
		if err := json.Unmarshal(raw.PrevResult, &c.RawPrevResult); err != nil {
			c.PrevResultErr = fmt.Errorf("prevResult is not a JSON object: %w", err)
		}
	}
	var errs []error
	switch raw.Enabled {
	case "true":
		c.Enabled = true
	case "false", "":
	default:
		errs = append(errs, fmt.Errorf(`enabled %q: want "true" or "false"`, raw.Enabled))
	}
	c.MTU = DefaultMTU
	if raw.MTU != "" {
		m, err := strconv.Atoi(raw.MTU)
		if err != nil || m < 576 || m > 65535 {
			errs = append(errs, fmt.Errorf("mtu %q: want an integer from 576 to 65535", raw.MTU))
		} else {
			c.MTU = m
		}
	}
	switch SNATMode(raw.RandomizeSNAT) {
	case "", SNATRandomFully:
		c.SNAT = SNATRandomFully
	case SNATHashRandom, SNATNone:
		c.SNAT = SNATMode(raw.RandomizeSNAT)
	default:
		errs = append(errs, fmt.Errorf("randomizeSNAT %q: want prng, hashrandom or none", raw.RandomizeSNAT))
	}

	if err := c.parseIPAM(raw); err != nil {
		errs = append(errs, fmt.Errorf("ipam: %w", err))
	}

	if raw.NodeIP != "" {
		c.NodeIP = net.ParseIP(raw.NodeIP)
		switch {
		case c.NodeIP == nil:
			errs = append(errs, fmt.Errorf("nodeIP %q is not an IP address", raw.NodeIP))
		case c.Family != 0 && (c.NodeIP.To4() != nil) != (c.Family == V4):
			errs = append(errs, fmt.Errorf("nodeIP %s is not of the egress range's family (%s)", raw.NodeIP, c.Family))
		case c.Family == V6 && !c.NodeIP.IsGlobalUnicast():
			errs = append(errs, fmt.Errorf("nodeIP %s is not a global unicast address", raw.NodeIP))
		}
	} else if c.Enabled {
		errs = append(errs, errors.New("nodeIP is empty but egress is enabled"))
	}
	if c.Network == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("egress-cni netconf: %w", err)
	}
	return c, nil
}

// parseIPAM reads the host-local section upstream writes: one range set
// of one range, routes, dataDir.
func (c *Config) parseIPAM(raw rawConf) error {
	ipam := raw.IPAM
	if ipam == nil {
		return errors.New("missing")
	}
	if ipam.Type != "host-local" {
		return fmt.Errorf("type %q: want host-local", ipam.Type)
	}
	var rs, re, gw, subnet string
	switch {
	case len(ipam.Ranges) == 1 && len(ipam.Ranges[0]) == 1:
		r := ipam.Ranges[0][0]
		subnet, rs, re, gw = r.Subnet, r.RangeStart, r.RangeEnd, r.Gateway
	case len(ipam.Ranges) == 0 && ipam.Subnet != "":
		subnet = ipam.Subnet
	default:
		return errors.New("want exactly one range (ranges: [[{subnet: ...}]])")
	}
	r, err := NewRange(subnet, rs, re, gw)
	if err != nil {
		return err
	}
	c.Range = r
	c.Family = V6
	if r.Subnet.Addr().Is4() {
		c.Family = V4
	}
	for _, rt := range ipam.Routes {
		p, err := netip.ParsePrefix(rt.Dst)
		if err != nil {
			return fmt.Errorf("route dst %q: %w", rt.Dst, err)
		}
		if p.Addr().Is4() != (c.Family == V4) {
			return fmt.Errorf("route dst %s is not of the range's family", p)
		}
		c.Routes = append(c.Routes, p.Masked())
	}
	if ipam.DataDir == "" {
		return errors.New("dataDir is empty")
	}
	c.DataDir = ipam.DataDir
	return nil
}
