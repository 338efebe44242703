package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vpc-cni/vpc-cni/pkg/conflist"
	ipamdconfig "github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
)

// config is the entrypoint's view of the aws-node environment, parsed and
// validated once. Every variable it shares with ipamd is decided by
// pkg/ipamd/config (one parser per variable), so the entrypoint refuses
// exactly what ipamd would refuse, and says so on its own output, which
// is what `kubectl logs` shows.
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

// parseConfig reads the environment through lookup. Hard errors (the checks
// of upstream's entrypoint and ipamd's own refusals, exit 1) are joined into err,
// each naming the variable and its value; values replaced by a default
// come back as warnings.
func parseConfig(lookup func(string) (string, bool)) (cfg config, warnings []string, err error) {
	ipamd, ipamdWarnings, ipamdErr := ipamdconfig.Load(lookup)
	p := envParser{lookup: lookup, warnings: ipamdWarnings}
	if ipamdErr != nil {
		p.errs = append(p.errs, ipamdErr)
	}
	cfg = config{
		HostCNIBinPath:     p.str("HOST_CNI_BIN_PATH", "/host/opt/cni/bin"),
		HostCNIConfDirPath: p.str("HOST_CNI_CONFDIR_PATH", "/host/etc/cni/net.d"),
		SocketPath:         ipamd.SocketPath,
		IPv6Cluster:        ipamd.EnableIPv6,
	}
	c := &cfg.Conflist

	// Plugin log file: kubelet parses the plugin's stdout as its result.
	// Set but empty, it reaches the conflist as upstream's entrypoint
	// writes it: the plugin then logs to stderr.
	c.PluginLogFile = p.strKeepEmpty("AWS_VPC_K8S_PLUGIN_LOG_FILE", "/var/log/aws-routed-eni/plugin.log")
	if isStdout(c.PluginLogFile) {
		p.fail("AWS_VPC_K8S_PLUGIN_LOG_FILE=%q: the plugin's stdout carries its CNI result; use a file or stderr", c.PluginLogFile)
	}
	// Set but empty, it is written empty, as upstream's entrypoint does;
	// the plugins then log at debug, as with the default.
	c.PluginLogLevel = p.strKeepEmpty("AWS_VPC_K8S_PLUGIN_LOG_LEVEL", "Debug")
	switch strings.ToLower(c.PluginLogLevel) {
	case "", "debug", "info", "warn", "warning", "error", "fatal":
	default:
		// Written as given, as upstream's entrypoint does; the plugins
		// read an unknown level as debug.
		p.warn("AWS_VPC_K8S_PLUGIN_LOG_LEVEL=%q is not one of debug, info, warn, error, fatal; the plugins log at debug", c.PluginLogLevel)
	}

	// Checked by ipamdconfig: veth prefix, enforcing mode, IP cooldown,
	// ENI MTU, prefix-delegation targets, SNAT randomisation.
	c.VethPrefix = ipamd.VethPrefix
	c.PodSGEnforcingMode = ipamd.PodSGEnforcingMode
	// Written as spelled when it parses ("09001"), as upstream's
	// entrypoint does; the plugins read the same number from it.
	c.MTU, c.MTUText = p.mtu("POD_MTU", ipamd.ENIMTU, cfg.IPv6Cluster)
	if c.MTUText == "" && ipamdErr == nil {
		c.MTUText = p.str("AWS_VPC_ENI_MTU", "")
	}

	egress := &conflist.Egress{IPv6Cluster: cfg.IPv6Cluster, RandomizeSNAT: ipamd.RandomizeSNAT}
	if cfg.IPv6Cluster {
		cfg.EgressEnabled = p.boolean("ENABLE_V4_EGRESS", true)
		egress.LogFile = p.strKeepEmpty("AWS_VPC_K8S_EGRESS_V4_PLUGIN_LOG_FILE", "/var/log/aws-routed-eni/egress-v4-plugin.log")
	} else {
		cfg.EgressEnabled = ipamd.EnableV6Egress
		// The pod MTU is v6if0's too, and the kernel refuses IPv6
		// addresses on a link below IPv6's minimum: every ADD would fail.
		if cfg.EgressEnabled && c.MTU < minIPv6MTU {
			p.fail("%s=%d: IPv6 egress (ENABLE_V6_EGRESS=true) gives pods an IPv6 link with this MTU, which must be at least %d",
				p.mtuVar(), c.MTU, minIPv6MTU)
		}
		egress.LogFile = p.strKeepEmpty("AWS_VPC_K8S_EGRESS_V6_PLUGIN_LOG_FILE", "/var/log/aws-routed-eni/egress-v6-plugin.log")
	}
	// egress-cni reads the word "stdout" as stderr, but opens a path.
	if isStdoutPath(egress.LogFile) {
		p.fail("%s=%q: the egress plugin's stdout carries its CNI result; use a file or stderr", egressLogVar(cfg.IPv6Cluster), egress.LogFile)
	}
	c.Egress = egress
	c.Bandwidth = p.boolean("ENABLE_BANDWIDTH_PLUGIN", false)
	c.DisablePodIPv6 = p.boolean("DISABLE_POD_V6", false)
	// The tuning plugin's net.ipv6.conf.all.disable_ipv6=1 removes every
	// IPv6 address in the pod, those given before it in the chain too.
	switch {
	case c.DisablePodIPv6 && cfg.IPv6Cluster:
		p.fail("DISABLE_POD_V6=true with ENABLE_IPv6=true: turning IPv6 off in pods removes their only address")
	case c.DisablePodIPv6 && cfg.EgressEnabled:
		p.fail("DISABLE_POD_V6=true with ENABLE_V6_EGRESS=true: turning IPv6 off in pods removes the IPv6 egress address egress-cni gives them")
	}
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

// str returns the value, or def when unset or empty.
func (p *envParser) str(name, def string) string {
	if v, ok := p.lookup(name); ok && v != "" {
		return v
	}
	return def
}

// strKeepEmpty returns the value, even empty, or def when unset.
func (p *envParser) strKeepEmpty(name, def string) string {
	if v, ok := p.lookup(name); ok {
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

// mtu reads an MTU under the same range as AWS_VPC_ENI_MTU, and returns
// its text when set.
func (p *envParser) mtu(name string, def int, ipv6 bool) (int, string) {
	v, ok := p.lookup(name)
	if !ok || v == "" {
		return def, ""
	}
	n, err := strconv.Atoi(v) // untrimmed: upstream's entrypoint refuses " 1500"
	if err != nil {
		p.fail("%s=%q: not an integer", name, v)
		return def, ""
	}
	if err := ipamdconfig.CheckMTU(n, ipv6); err != nil {
		p.fail("%s=%d: %w", name, n, err)
		return def, ""
	}
	return n, v
}

// minIPv6MTU is IPv6's minimum link MTU (RFC 8200).
const minIPv6MTU = 1280

// mtuVar names the variable the conflist's mtu came from.
func (p *envParser) mtuVar() string {
	if v, ok := p.lookup("POD_MTU"); ok && v != "" {
		return "POD_MTU"
	}
	return "AWS_VPC_ENI_MTU"
}

// isStdout reports whether a plugin log file is the plugin's stdout, by
// name or by a path to it: the plugin would write its log lines in front
// of the CNI result it prints there, and every pod's ADD would fail.
func isStdout(file string) bool {
	return strings.EqualFold(file, "stdout") || isStdoutPath(file)
}

// isStdoutPath reports whether a log file path opens the process's stdout.
func isStdoutPath(file string) bool {
	switch filepath.Clean(file) {
	case "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1", "/proc/thread-self/fd/1":
		return true
	}
	return false
}

func egressLogVar(ipv6Cluster bool) string {
	if ipv6Cluster {
		return "AWS_VPC_K8S_EGRESS_V4_PLUGIN_LOG_FILE"
	}
	return "AWS_VPC_K8S_EGRESS_V6_PLUGIN_LOG_FILE"
}
