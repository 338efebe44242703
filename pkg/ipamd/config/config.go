// Package config is ipamd's typed configuration: every environment variable
// upstream's ipamd reads (reference §1.2), parsed once in main, defaulted and
// validated as a whole.
//
// Where upstream silently falls back to a default on a value it cannot parse,
// we refuse to start and name the variable and the value, except for the few
// cases below where upstream's fallback is harmless and documented, in which
// case Load returns a warning instead:
//
//	variable                              bad value upstream    here
//	------------------------------------  --------------------  ------------------------------
//	any boolean (ENABLE_*, DISABLE_*, …)   default, logged       error
//	WARM_ENI/IP/PREFIX, MINIMUM_IP_TARGET  0 or 1 (default)      error (negative or not an int)
//	MAX_ENI                               ignored               error (not an int); ≤0 = unset
//	ENABLE_IPv4 + ENABLE_IPv6              both/neither: fatal   error
//	ENABLE_IPv6                            without PD: fatal     error; with custom networking: error
//	ENABLE_PREFIX_DELEGATION              all targets "0"       error (numeric test, §1.4 rule 6)
//	POD_SECURITY_GROUP_ENFORCING_MODE     strict                error
//	NETWORK_POLICY_ENFORCING_MODE         fatal                 error
//	AWS_VPC_K8S_CNI_RANDOMIZESNAT         prng, logged          error
//	AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS    entry skipped         error (IPv4 CIDRs only)
//	AWS_EXTERNAL_SERVICE_CIDRS            entry skipped         error
//	AWS_VPC_K8S_CNI_VETHPREFIX            entrypoint refuses    error (≤4 chars, not eth/lo/vlan)
//	AWS_VPC_ENI_MTU                       entrypoint refuses    error (576–9001, IPv6 1280–9001)
//	IP_COOLDOWN_PERIOD                    30 / refused          error (integer seconds ≥ 0)
//	AWS_VPC_K8S_CNI_CONNMARK              0x80                  error (1 … 2^32-1, base auto)
//	ADDITIONAL_ENI_TAGS                   ignored (bad JSON)    error; k8s.amazonaws.com keys dropped with a warning
//	HTTP_TIMEOUT                          10 s if <10           warning, 10 s; error if not an int
//	AWS_VPC_K8S_CNI_LOGLEVEL              debug                 error
//
// ENABLE_IPv4 defaults to true: upstream's code default is false but every
// shipped manifest sets it to "true", so true is the effective behaviour a
// user swapping the image sees; a node that sets ENABLE_IPv6=true must set
// ENABLE_IPv4=false explicitly, exactly as with the upstream manifest.
//
// Variables read only by the entrypoint (plugin log files, POD_MTU,
// ENABLE_BANDWIDTH_PLUGIN, HOST_CNI_* …) are not ipamd's and are not parsed
// here.
//
// Test-only overrides (never set on a real node):
//
//	VPC_CNI_IPAMD_SOCKET           gRPC unix socket path (default /var/run/aws-node/ipamd.sock)
//	VPC_CNI_DISABLE_HOST_NETWORK   true: ipamd programs no host networking at all (no route
//	                               tables, rules or iptables); for running ipamd as an
//	                               unprivileged process against vpcsim
//	VPC_CNI_MAX_PODS               max pods when no API server answers (default: the
//	                               instance type's eni-max-pods value, else 110)
//	VPC_CNI_TEST_FAST_INTERVALS    true: pool manager, reconcile and leaked-ENI sweep run
//	                               on sub-second timers with no release spacing and no
//	                               minimum ENI age, so process-level tests see the pool
//	                               grow and shrink within seconds
//	VPC_CNI_METRICS_ADDR           metrics listen address instead of :61678 (e.g. 127.0.0.1:0
//	                               so parallel test daemons do not collide)
//	AWS_EC2_METADATA_SERVICE_ENDPOINT  IMDS endpoint (the AWS SDK's own variable)
//
// KUBECONFIG, when set, is read instead of the in-cluster service account
// (ipamd outside a pod, e.g. the local VPC with a test API server).
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of fixed paths on a real node.
const (
	DefaultSocketPath   = "/var/run/aws-node/ipamd.sock"
	DefaultBackingStore = "/var/run/aws-node/ipam.json"
	DefaultLogFile      = "/host/var/log/aws-routed-eni/ipamd.log"
	DefaultIntrospect   = "127.0.0.1:61679"
	DefaultMetricsAddr  = ":61678"
	DefaultENIConfigKey = "k8s.amazonaws.com/eniConfig"
)

// Config is ipamd's whole configuration. The zero value is not valid: use
// Defaults or Load.
type Config struct {
	// Address families.
	EnableIPv4 bool // ENABLE_IPv4 (default true, see package doc)
	EnableIPv6 bool // ENABLE_IPv6

	// Warm pool.
	WarmENITarget          int  // WARM_ENI_TARGET (1)
	WarmIPTarget           int  // WARM_IP_TARGET (0 = unset)
	MinimumIPTarget        int  // MINIMUM_IP_TARGET (0 = unset)
	WarmPrefixTarget       int  // WARM_PREFIX_TARGET (0)
	MaxENI                 int  // MAX_ENI (-1 = unset, instance limit)
	EnablePrefixDelegation bool // ENABLE_PREFIX_DELEGATION
	IPCooldown             time.Duration

	// ENIs.
	CustomNetworking         bool   // AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG
	ENIConfigLabelDef        string // ENI_CONFIG_LABEL_DEF
	ENIConfigAnnotationDef   string // ENI_CONFIG_ANNOTATION_DEF
	EnableSubnetDiscovery    bool   // ENABLE_SUBNET_DISCOVERY (true)
	ManageUntaggedENI        bool   // MANAGE_UNTAGGED_ENI (true)
	EnableMultiNIC           bool   // ENABLE_MULTI_NIC
	DisableLeakedENICleanup  bool   // DISABLE_LEAKED_ENI_CLEANUP
	DisableProvisioning      bool   // DISABLE_NETWORK_RESOURCE_PROVISIONING (implied by IMDS-only)
	IMDSOnlyMode             bool   // ENABLE_IMDS_ONLY_MODE
	ManageENIsNonSchedulable bool   // AWS_MANAGE_ENIS_NON_SCHEDULABLE
	AdditionalENITags        map[string]string
	ClusterName              string // CLUSTER_NAME

	// Pods.
	EnablePodENI               bool   // ENABLE_POD_ENI
	PodSGEnforcingMode         string // POD_SECURITY_GROUP_ENFORCING_MODE: strict|standard
	AnnotatePodIP              bool   // ANNOTATE_POD_IP
	NetworkPolicyEnforcingMode string // NETWORK_POLICY_ENFORCING_MODE: ""|none|strict|standard (lower-cased)

	// Host networking.
	ExternalSNAT         bool           // AWS_VPC_K8S_CNI_EXTERNALSNAT
	ExcludeSNATCIDRs     []netip.Prefix // AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS
	RandomizeSNAT        string         // AWS_VPC_K8S_CNI_RANDOMIZESNAT: prng|hashrandom|none
	VethPrefix           string         // AWS_VPC_K8S_CNI_VETHPREFIX (eni)
	ENIMTU               int            // AWS_VPC_ENI_MTU (9001)
	NodePortSupport      bool           // AWS_VPC_CNI_NODE_PORT_SUPPORT (true)
	Connmark             uint32         // AWS_VPC_K8S_CNI_CONNMARK (0x80)
	ExternalServiceCIDRs []netip.Prefix // AWS_EXTERNAL_SERVICE_CIDRS
	EnableV6Egress       bool           // ENABLE_V6_EGRESS

	// AWS and Kubernetes endpoints.
	ClusterEndpoint string        // CLUSTER_ENDPOINT
	EC2Endpoint     string        // AWS_EC2_ENDPOINT
	IMDSEndpoint    string        // AWS_EC2_METADATA_SERVICE_ENDPOINT
	HTTPTimeout     time.Duration // HTTP_TIMEOUT (10 s, minimum 10 s)
	Version         string        // VPC_CNI_VERSION
	Kubeconfig      string        // KUBECONFIG (ipamd outside a pod)
	NodeName        string        // MY_NODE_NAME
	PodName         string        // MY_POD_NAME

	// Files and servers.
	BackingStore         string // AWS_VPC_K8S_CNI_BACKING_STORE
	SocketPath           string // VPC_CNI_IPAMD_SOCKET (tests)
	IntrospectionAddr    string // INTROSPECTION_BIND_ADDRESS
	DisableIntrospection bool   // DISABLE_INTROSPECTION
	DisableMetrics       bool   // DISABLE_METRICS
	MetricsAddr          string // VPC_CNI_METRICS_ADDR (tests; default :61678)
	LogLevel             string // AWS_VPC_K8S_CNI_LOGLEVEL: debug|info|warn|error|fatal
	LogFile              string // AWS_VPC_K8S_CNI_LOG_FILE: stdout|stderr|path

	// Test-only.
	DisableHostNetwork bool // VPC_CNI_DISABLE_HOST_NETWORK
	MaxPodsOverride    int  // VPC_CNI_MAX_PODS (0 = unset)
	FastIntervals      bool // VPC_CNI_TEST_FAST_INTERVALS
}

// Defaults returns the configuration of a node that sets no variable,
// using the manifest's effective ENABLE_IPv4=true.
func Defaults() Config {
	return Config{
		EnableIPv4:             true,
		WarmENITarget:          1,
		MaxENI:                 -1,
		IPCooldown:             30 * time.Second,
		ENIConfigLabelDef:      DefaultENIConfigKey,
		ENIConfigAnnotationDef: DefaultENIConfigKey,
		EnableSubnetDiscovery:  true,
		ManageUntaggedENI:      true,
		PodSGEnforcingMode:     "strict",
		RandomizeSNAT:          "prng",
		VethPrefix:             "eni",
		ENIMTU:                 9001,
		NodePortSupport:        true,
		Connmark:               0x80,
		HTTPTimeout:            10 * time.Second,
		BackingStore:           DefaultBackingStore,
		SocketPath:             DefaultSocketPath,
		IntrospectionAddr:      DefaultIntrospect,
		MetricsAddr:            DefaultMetricsAddr,
		LogLevel:               "debug",
		LogFile:                DefaultLogFile,
	}
}

// Load reads every variable through lookup (os.LookupEnv in main), applies
// defaults and validates. It returns warnings for accepted-but-adjusted
// values, and all errors joined.
func Load(lookup func(string) (string, bool)) (Config, []string, error) {
	p := &parser{lookup: lookup}
	c := Defaults()

	p.boolean("ENABLE_IPv4", &c.EnableIPv4)
	p.boolean("ENABLE_IPv6", &c.EnableIPv6)

	p.nonNegInt("WARM_ENI_TARGET", &c.WarmENITarget)
	p.nonNegInt("WARM_IP_TARGET", &c.WarmIPTarget)
	p.nonNegInt("MINIMUM_IP_TARGET", &c.MinimumIPTarget)
	p.nonNegInt("WARM_PREFIX_TARGET", &c.WarmPrefixTarget)
	if v, ok := p.get("MAX_ENI"); ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			p.fail("MAX_ENI", v, "not an integer")
		case n < 1:
			c.MaxENI = -1 // upstream: used only if ≥ 1
		default:
			c.MaxENI = n
		}
	}
	p.boolean("ENABLE_PREFIX_DELEGATION", &c.EnablePrefixDelegation)
	var cooldown = 30
	p.nonNegInt("IP_COOLDOWN_PERIOD", &cooldown)
	c.IPCooldown = time.Duration(cooldown) * time.Second

	p.boolean("AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG", &c.CustomNetworking)
	p.nonEmptyString("ENI_CONFIG_LABEL_DEF", &c.ENIConfigLabelDef)
	p.nonEmptyString("ENI_CONFIG_ANNOTATION_DEF", &c.ENIConfigAnnotationDef)
	p.boolean("ENABLE_SUBNET_DISCOVERY", &c.EnableSubnetDiscovery)
	p.boolean("MANAGE_UNTAGGED_ENI", &c.ManageUntaggedENI)
	p.boolean("ENABLE_MULTI_NIC", &c.EnableMultiNIC)
	p.boolean("DISABLE_LEAKED_ENI_CLEANUP", &c.DisableLeakedENICleanup)
	p.boolean("DISABLE_NETWORK_RESOURCE_PROVISIONING", &c.DisableProvisioning)
	p.boolean("ENABLE_IMDS_ONLY_MODE", &c.IMDSOnlyMode)
	p.boolean("AWS_MANAGE_ENIS_NON_SCHEDULABLE", &c.ManageENIsNonSchedulable)
	p.tags("ADDITIONAL_ENI_TAGS", &c.AdditionalENITags)
	p.str("CLUSTER_NAME", &c.ClusterName)

	p.boolean("ENABLE_POD_ENI", &c.EnablePodENI)
	p.oneOf("POD_SECURITY_GROUP_ENFORCING_MODE", &c.PodSGEnforcingMode, false, "strict", "standard")
	p.boolean("ANNOTATE_POD_IP", &c.AnnotatePodIP)
	p.oneOf("NETWORK_POLICY_ENFORCING_MODE", &c.NetworkPolicyEnforcingMode, true, "none", "strict", "standard")

	p.boolean("AWS_VPC_K8S_CNI_EXTERNALSNAT", &c.ExternalSNAT)
	p.cidrs("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", &c.ExcludeSNATCIDRs)
	p.oneOf("AWS_VPC_K8S_CNI_RANDOMIZESNAT", &c.RandomizeSNAT, false, "prng", "hashrandom", "none")
	if v, ok := p.get("AWS_VPC_K8S_CNI_VETHPREFIX"); ok {
		c.VethPrefix = v
	}
	p.integer("AWS_VPC_ENI_MTU", &c.ENIMTU)
	p.boolean("AWS_VPC_CNI_NODE_PORT_SUPPORT", &c.NodePortSupport)
	if v, ok := p.get("AWS_VPC_K8S_CNI_CONNMARK"); ok {
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil || n <= 0 || n > 1<<32-1 {
			p.fail("AWS_VPC_K8S_CNI_CONNMARK", v, "want an integer mark in 1…0xffffffff (0x prefix allowed)")
		} else {
			c.Connmark = uint32(n)
		}
	}
	p.cidrs("AWS_EXTERNAL_SERVICE_CIDRS", &c.ExternalServiceCIDRs)
	p.boolean("ENABLE_V6_EGRESS", &c.EnableV6Egress)

	p.str("CLUSTER_ENDPOINT", &c.ClusterEndpoint)
	p.str("AWS_EC2_ENDPOINT", &c.EC2Endpoint)
	p.str("AWS_EC2_METADATA_SERVICE_ENDPOINT", &c.IMDSEndpoint)
	if v, ok := p.get("HTTP_TIMEOUT"); ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			p.fail("HTTP_TIMEOUT", v, "not an integer number of seconds")
		case n < 10:
			p.warn("HTTP_TIMEOUT=%q is below the minimum of 10 seconds; using 10", v)
		default:
			c.HTTPTimeout = time.Duration(n) * time.Second
		}
	}
	p.str("VPC_CNI_VERSION", &c.Version)
	p.str("KUBECONFIG", &c.Kubeconfig)
	p.str("MY_NODE_NAME", &c.NodeName)
	p.str("MY_POD_NAME", &c.PodName)

	p.nonEmptyString("AWS_VPC_K8S_CNI_BACKING_STORE", &c.BackingStore)
	p.nonEmptyString("VPC_CNI_IPAMD_SOCKET", &c.SocketPath)
	p.nonEmptyString("INTROSPECTION_BIND_ADDRESS", &c.IntrospectionAddr)
	p.boolean("DISABLE_INTROSPECTION", &c.DisableIntrospection)
	p.boolean("DISABLE_METRICS", &c.DisableMetrics)
	p.nonEmptyString("VPC_CNI_METRICS_ADDR", &c.MetricsAddr)
	p.oneOf("AWS_VPC_K8S_CNI_LOGLEVEL", &c.LogLevel, false, "debug", "info", "warn", "error", "fatal")
	p.nonEmptyString("AWS_VPC_K8S_CNI_LOG_FILE", &c.LogFile)

	p.boolean("VPC_CNI_DISABLE_HOST_NETWORK", &c.DisableHostNetwork)
	p.nonNegInt("VPC_CNI_MAX_PODS", &c.MaxPodsOverride)
	p.boolean("VPC_CNI_TEST_FAST_INTERVALS", &c.FastIntervals)

	if c.IMDSOnlyMode {
		// Upstream: IMDS-only implies no provisioning and no leaked-ENI sweep.
		c.DisableProvisioning = true
		c.DisableLeakedENICleanup = true
	}
	err := errors.Join(append(p.errs, c.Validate())...)
	return c, p.warnings, err
}

// Validate checks the configuration as a whole (the rules upstream enforces
// at ipamd start and in the entrypoint), returning every problem joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	switch {
	case c.EnableIPv4 && c.EnableIPv6:
		bad("ENABLE_IPv4=true and ENABLE_IPv6=true: dual-stack pods are not supported, enable exactly one family")
	case !c.EnableIPv4 && !c.EnableIPv6:
		bad("ENABLE_IPv4=false and ENABLE_IPv6=false: enable exactly one address family")
	}
	if c.EnableIPv6 && !c.EnablePrefixDelegation {
		bad("ENABLE_IPv6=true requires ENABLE_PREFIX_DELEGATION=true")
	}
	if c.EnableIPv6 && c.CustomNetworking {
		bad("ENABLE_IPv6=true cannot be combined with AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true")
	}
	if c.EnablePrefixDelegation && c.EnableIPv4 && c.WarmIPTarget <= 0 && c.WarmPrefixTarget <= 0 && c.MinimumIPTarget <= 0 {
		bad("ENABLE_PREFIX_DELEGATION=true needs one of WARM_IP_TARGET, WARM_PREFIX_TARGET or MINIMUM_IP_TARGET above 0 (all are %d, %d, %d)",
			c.WarmIPTarget, c.WarmPrefixTarget, c.MinimumIPTarget)
	}
	for name, v := range map[string]int{
		"WARM_ENI_TARGET": c.WarmENITarget, "WARM_IP_TARGET": c.WarmIPTarget,
		"MINIMUM_IP_TARGET": c.MinimumIPTarget, "WARM_PREFIX_TARGET": c.WarmPrefixTarget,
	} {
		if v < 0 {
			bad("%s=%d: must not be negative", name, v)
		}
	}
	if c.MaxENI == 0 || c.MaxENI < -1 {
		bad("MAX_ENI=%d: must be at least 1 (or unset)", c.MaxENI)
	}
	if c.IPCooldown < 0 {
		bad("IP_COOLDOWN_PERIOD=%s: must not be negative", c.IPCooldown)
	}
	if len(c.VethPrefix) > 4 || slices.Contains([]string{"eth", "lo", "vlan"}, c.VethPrefix) {
		bad("AWS_VPC_K8S_CNI_VETHPREFIX=%q: at most 4 characters and not one of eth, lo, vlan", c.VethPrefix)
	}
	lo := 576
	if c.EnableIPv6 {
		lo = 1280
	}
	if c.ENIMTU < lo || c.ENIMTU > 9001 {
		bad("AWS_VPC_ENI_MTU=%d: must be within %d–9001", c.ENIMTU, lo)
	}
	if c.SocketPath == "" {
		bad("VPC_CNI_IPAMD_SOCKET: empty socket path")
	}
	if c.BackingStore == "" {
		bad("AWS_VPC_K8S_CNI_BACKING_STORE: empty checkpoint path")
	}
	return errors.Join(errs...)
}

// CheckpointPath returns the checkpoint file of network card n: card 0 uses
// the backing store itself, card N>0 replaces ".json" with "-nic-N.json".
func (c Config) CheckpointPath(card int) string {
	if card == 0 {
		return c.BackingStore
	}
	return strings.TrimSuffix(c.BackingStore, ".json") + fmt.Sprintf("-nic-%d.json", card)
}

// IPTargetsDefined reports whether WARM_IP_TARGET or MINIMUM_IP_TARGET
// replaces the ENI/prefix warm logic.
func (c Config) IPTargetsDefined() bool { return c.WarmIPTarget > 0 || c.MinimumIPTarget > 0 }

// parser collects errors and warnings while reading variables.
type parser struct {
	lookup   func(string) (string, bool)
	errs     []error
	warnings []string
}

func (p *parser) get(name string) (string, bool) {
	v, ok := p.lookup(name)
	if !ok {
		return "", false
	}
	return strings.TrimSpace(v), true
}

func (p *parser) fail(name, value, why string) {
	p.errs = append(p.errs, fmt.Errorf("%s=%q: %s", name, value, why))
}

func (p *parser) warn(format string, args ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf(format, args...))
}

func (p *parser) boolean(name string, dst *bool) {
	v, ok := p.get(name)
	if !ok || v == "" { // upstream: empty means default
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "not a boolean (want true or false)")
		return
	}
	*dst = b
}

func (p *parser) integer(name string, dst *int) {
	v, ok := p.get(name)
	if !ok || v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, v, "not an integer")
		return
	}
	*dst = n
}

func (p *parser) nonNegInt(name string, dst *int) {
	v, ok := p.get(name)
	if !ok || v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, v, "not an integer")
		return
	}
	if n < 0 {
		p.fail(name, v, "must not be negative")
		return
	}
	*dst = n
}

func (p *parser) str(name string, dst *string) {
	if v, ok := p.get(name); ok {
		*dst = v
	}
}

func (p *parser) nonEmptyString(name string, dst *string) {
	if v, ok := p.get(name); ok && v != "" {
		*dst = v
	}
}

// oneOf accepts one of allowed, case-insensitively, storing it lower-cased.
// keepEmpty: an empty value is stored as "" instead of meaning default.
func (p *parser) oneOf(name string, dst *string, keepEmpty bool, allowed ...string) {
	v, ok := p.get(name)
	if !ok {
		return
	}
	if v == "" {
		if keepEmpty {
			*dst = ""
		}
		return
	}
	l := strings.ToLower(v)
	if !slices.Contains(allowed, l) {
		p.fail(name, v, "want one of "+strings.Join(allowed, ", "))
		return
	}
	*dst = l
}

func (p *parser) cidrs(name string, dst *[]netip.Prefix) {
	v, ok := p.get(name)
	if !ok || v == "" {
		return
	}
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil || !pfx.Addr().Is4() {
			p.fail(name, v, fmt.Sprintf("entry %q is not an IPv4 CIDR", s))
			return
		}
		out = append(out, pfx.Masked())
	}
	*dst = out
}

func (p *parser) tags(name string, dst *map[string]string) {
	v, ok := p.get(name)
	if !ok || v == "" {
		return
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		p.fail(name, v, fmt.Sprintf("not a JSON object of string values: %v", err))
		return
	}
	for k := range m {
		if strings.Contains(k, "k8s.amazonaws.com") {
			p.warn("%s: tag key %q is reserved (contains k8s.amazonaws.com); dropped", name, k)
			delete(m, k)
		}
	}
	*dst = m
}
