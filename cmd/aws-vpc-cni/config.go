package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vpc-cni/vpc-cni/pkg/conflist"
)

// config is the entrypoint's view of the aws-node environment (reference
// §1.2, §1.4, §8.2), parsed and validated once.
type config struct {
	HostCNIBinPath     string // HOST_CNI_BIN_PATH
	HostCNIConfDirPath string // HOST_CNI_CONFDIR_PATH
	SocketPath         string // VPC_CNI_IPAMD_SOCKET (as ipamd reads it)

	IPv6Cluster bool // ENABLE_IPv6
	// EgressEnabled: ENABLE_V4_EGRESS in an IPv6 cluster, ENABLE_V6_EGRESS
	// in an IPv4 one. The node IP comes from IMDS later.
	EgressEnabled bool

	// Conflist without the egress node IP, which needs IMDS.
	Conflist conflist.Config
}

const (
	defaultSocketPath          = "/var/run/aws-node/ipamd.sock"
	minMTUv4, minMTUv6, maxMTU = 576, 1280, 9001
)

var reservedVethPrefixes = map[string]bool{"eth": true, "lo": true, "vlan": true}

// parseConfig reads the environment through lookup. Hard errors (upstream's
// validateEnvVars, exit 1) are joined into err, each naming the variable and
// its value; values upstream silently replaces with a default come back as
// warnings.
func parseConfig(lookup func(string) (string, bool)) (cfg config, warnings []string, err error) {
	p := envParser{lookup: lookup}
	cfg = config{
		HostCNIBinPath:     p.str("HOST_CNI_BIN_PATH", "/host/opt/cni/bin"),
		HostCNIConfDirPath: p.str("HOST_CNI_CONFDIR_PATH", "/host/etc/cni/net.d"),
		SocketPath:         p.str("VPC_CNI_IPAMD_SOCKET", defaultSocketPath),
		IPv6Cluster:        p.boolean("ENABLE_IPv6", false),
	}
	c := &cfg.Conflist

	// 1. Plugin log file: kubelet parses the plugin's stdout as its result.
	c.PluginLogFile = p.str("AWS_VPC_K8S_PLUGIN_LOG_FILE", "/var/log/aws-routed-eni/plugin.log")
	if strings.EqualFold(c.PluginLogFile, "stdout") {
		p.fail("AWS_VPC_K8S_PLUGIN_LOG_FILE=%q: the plugin's stdout carries its CNI result; use a file or stderr", c.PluginLogFile)
	}
	c.PluginLogLevel = p.str("AWS_VPC_K8S_PLUGIN_LOG_LEVEL", "Debug")

	// 2. Veth prefix.
	veth, set := lookup("AWS_VPC_K8S_CNI_VETHPREFIX")
	switch {
	case !set:
		veth = "eni"
	case veth == "":
		p.fail("AWS_VPC_K8S_CNI_VETHPREFIX is set but empty; unset it for the default \"eni\"")
	case len(veth) > 4:
		p.fail("AWS_VPC_K8S_CNI_VETHPREFIX=%q: at most 4 characters (host veth names are limited to 15)", veth)
	case reservedVethPrefixes[veth]:
		p.fail("AWS_VPC_K8S_CNI_VETHPREFIX=%q: reserved for other interfaces (eth, lo, vlan)", veth)
	}
	c.VethPrefix = veth

	// 3. Security-group-for-pods enforcing mode.
	podENI := p.boolean("ENABLE_POD_ENI", false)
	c.PodSGEnforcingMode = p.str("POD_SECURITY_GROUP_ENFORCING_MODE", "strict")
	if m := c.PodSGEnforcingMode; m != "strict" && m != "standard" {
		if podENI {
			p.fail("POD_SECURITY_GROUP_ENFORCING_MODE=%q: want strict or standard (ENABLE_POD_ENI=true)", m)
		} else {
			p.warn("POD_SECURITY_GROUP_ENFORCING_MODE=%q is not strict or standard; using strict", m)
			c.PodSGEnforcingMode = "strict"
		}
	}

	// 4. IP cooldown.
	if v, ok := lookup("IP_COOLDOWN_PERIOD"); ok {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			p.fail("IP_COOLDOWN_PERIOD=%q: want a whole number of seconds >= 0", v)
		}
	}

	// 5. MTUs, by address family.
	minMTU := minMTUv4
	if cfg.IPv6Cluster {
		minMTU = minMTUv6
	}
	eniMTU := p.mtu("AWS_VPC_ENI_MTU", maxMTU, minMTU)
	c.MTU = p.mtu("POD_MTU", eniMTU, minMTU)

	// 6. Prefix delegation needs a warm or minimum target above zero.
	// Upstream compares the strings with "0" lexically, so "00" or "-1"
	// passed; compare numbers.
	if p.boolean("ENABLE_PREFIX_DELEGATION", false) {
		anyPositive := false
		for _, name := range []string{"WARM_IP_TARGET", "WARM_PREFIX_TARGET", "MINIMUM_IP_TARGET"} {
			v, ok := lookup(name)
			if !ok || strings.TrimSpace(v) == "" {
				continue
			}
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				p.fail("%s=%q: want a whole number", name, v)
				continue
			}
			anyPositive = anyPositive || n > 0
		}
		if !anyPositive {
			p.fail("ENABLE_PREFIX_DELEGATION=true needs WARM_IP_TARGET, WARM_PREFIX_TARGET or MINIMUM_IP_TARGET above 0 (WARM_IP_TARGET=%q WARM_PREFIX_TARGET=%q MINIMUM_IP_TARGET=%q)",
				p.raw("WARM_IP_TARGET"), p.raw("WARM_PREFIX_TARGET"), p.raw("MINIMUM_IP_TARGET"))
		}
	}

	snat := p.str("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "prng")
	switch snat {
	case "prng", "hashrandom", "none":
	default:
		p.warn("AWS_VPC_K8S_CNI_RANDOMIZESNAT=%q: want prng, hashrandom or none; using prng", snat)
		snat = "prng"
	}
	egress := &conflist.Egress{IPv6Cluster: cfg.IPv6Cluster, RandomizeSNAT: snat}
	if cfg.IPv6Cluster {
		cfg.EgressEnabled = p.boolean("ENABLE_V4_EGRESS", true)
		egress.LogFile = p.str("AWS_VPC_K8S_EGRESS_V4_PLUGIN_LOG_FILE", "/var/log/aws-routed-eni/egress-v4-plugin.log")
	} else {
		cfg.EgressEnabled = p.boolean("ENABLE_V6_EGRESS", false)
		egress.LogFile = p.str("AWS_VPC_K8S_EGRESS_V6_PLUGIN_LOG_FILE", "/var/log/aws-routed-eni/egress-v6-plugin.log")
	}
	c.Egress = egress
	c.Bandwidth = p.boolean("ENABLE_BANDWIDTH_PLUGIN", false)
	c.DisablePodIPv6 = p.boolean("DISABLE_POD_V6", false)
	return cfg, p.warnings, errors.Join(p.errs...)
}

type envParser struct {
	lookup   func(string) (string, bool)
	errs     []error
	warnings []string
}

func (p *envParser) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

func (p *envParser) warn(format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, args...))
}

func (p *envParser) raw(name string) string {
	v, _ := p.lookup(name)
	return v
}

// str returns the value, or def when unset or empty.
func (p *envParser) str(name, def string) string {
	if v, ok := p.lookup(name); ok && v != "" {
		return v
	}
	return def
}

// boolean follows strconv.ParseBool; an unparsable value warns and keeps def
// (upstream's behaviour, made visible).
func (p *envParser) boolean(name string, def bool) bool {
	v, ok := p.lookup(name)
	if !ok || v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.warn("%s=%q is not a boolean; using %t", name, v, def)
		return def
	}
	return b
}

func (p *envParser) mtu(name string, def, lo int) int {
	v, ok := p.lookup(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > maxMTU {
		p.fail("%s=%q: want a whole number from %d to %d", name, v, lo, maxMTU)
		return def
	}
	return n
}
