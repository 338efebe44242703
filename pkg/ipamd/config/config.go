// Package config is ipamd's typed configuration: every environment variable
// upstream's ipamd reads, parsed once, defaulted and validated as a whole
// (docs/compatibility.md, "ipamd: configuration and environment variables").
// The entrypoint (cmd/aws-vpc-cni) runs the same Load before it starts
// ipamd, so one parser decides every variable they share.
//
// A user swaps the image of a working upstream DaemonSet and nothing else
// changes, so where upstream falls back on a bad value we fall back the
// same way, and Load returns a warning naming the variable, the value and
// the value used (main logs each once at start). We refuse to start only
// where upstream refuses (ipamd's isConfigValid, the entrypoint's checks)
// or where going on would be dangerous:
//
//	variable                              bad value upstream        here
//	------------------------------------  ------------------------  ------------------------------------
//	any boolean (ENABLE_*, DISABLE_*, …)   default, logged           warning, default
//	WARM_ENI_TARGET                        1                         warning, 1 (negative or not an int)
//	WARM_IP/PREFIX, MINIMUM_IP_TARGET      0                         warning, 0 (negative or not an int)
//	MAX_ENI                               ignored                   warning, unset; ≤0 = unset
//	AWS_VPC_K8S_CNI_LOGLEVEL              debug                     warning, debug
//	AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS    entry skipped             warning, entry skipped (IPv4 only)
//	AWS_EXTERNAL_SERVICE_CIDRS            entry skipped             warning, entry skipped (IPv4 only)
//	ADDITIONAL_ENI_TAGS                   ignored (bad JSON)        warning, ignored; k8s.amazonaws.com keys dropped
//	                                      EC2 refuses every ENI     error: aws: prefix, empty key, key >128,
//	                                                                value >256, >50 tags with ours
//	POD_SECURITY_GROUP_ENFORCING_MODE     strict; the entrypoint    warning, strict; error if ENABLE_POD_ENI=true
//	                                      refuses with pod ENIs     (as the entrypoint)
//	IP_COOLDOWN_PERIOD                    entrypoint refuses        error (not an int, negative, >MaxIPCooldown)
//	AWS_VPC_K8S_CNI_RANDOMIZESNAT         prng, logged              warning, prng
//	AWS_VPC_K8S_CNI_CONNMARK              0x80                      warning, 0x80 (valid: 1 … 2^32-1, base auto)
//	HTTP_TIMEOUT                          10 s if <10 or invalid    warning, 10 s; >MaxHTTPTimeout: warning, max
//	ENABLE_IPv4 + ENABLE_IPv6              both/neither: fatal       error
//	ENABLE_IPv6                            without PD: fatal         error; with custom networking: error
//	ENABLE_PREFIX_DELEGATION              all targets "0": refused  error (numeric test, not lexical)
//	NETWORK_POLICY_ENFORCING_MODE         fatal                     error
//	AWS_VPC_K8S_CNI_VETHPREFIX            entrypoint refuses        error (vethname.ValidatePrefix)
//	AWS_VPC_ENI_MTU                       entrypoint refuses        error (576–9001, IPv6 1280–9001)
//	VPC_CNI_MAX_PODS (test-only)          -                         error (a test asked for it)
//
// ENABLE_IPv4, when absent, is the opposite of ENABLE_IPv6: upstream's
// code default is false but every shipped manifest sets it to "true", so a
// node setting nothing runs IPv4 as with the manifest, and a node setting
// only ENABLE_IPv6=true runs IPv6. Setting both to true, or ENABLE_IPv4 to
// false without IPv6, is refused as upstream does.
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
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// Defaults of fixed paths on a real node.
const (
	DefaultSocketPath   = hostcontract.IpamdSocket
	DefaultBackingStore = hostcontract.CheckpointPath
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
	EnablePrefixDelegation bool `env:"ENABLE_PREFIX_DELEGATION"`
	IPCooldown             time.Duration

	// ENIs.
	CustomNetworking         bool   `env:"AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG"`
	ENIConfigLabelDef        string `env:"ENI_CONFIG_LABEL_DEF,nonempty"`
	ENIConfigAnnotationDef   string `env:"ENI_CONFIG_ANNOTATION_DEF,nonempty"`
	EnableSubnetDiscovery    bool   `env:"ENABLE_SUBNET_DISCOVERY"` // default true
	ManageUntaggedENI        bool   `env:"MANAGE_UNTAGGED_ENI"`     // default true
	EnableMultiNIC           bool   `env:"ENABLE_MULTI_NIC"`
	DisableLeakedENICleanup  bool   `env:"DISABLE_LEAKED_ENI_CLEANUP"`
	DisableProvisioning      bool   `env:"DISABLE_NETWORK_RESOURCE_PROVISIONING"` // implied by IMDS-only
	IMDSOnlyMode             bool   `env:"ENABLE_IMDS_ONLY_MODE"`
	ManageENIsNonSchedulable bool   `env:"AWS_MANAGE_ENIS_NON_SCHEDULABLE"`
	AdditionalENITags        map[string]string
	ClusterName              string `env:"CLUSTER_NAME"`

	// Pods.
	EnablePodENI               bool   `env:"ENABLE_POD_ENI"`
	PodSGEnforcingMode         string // POD_SECURITY_GROUP_ENFORCING_MODE: strict|standard
	AnnotatePodIP              bool   `env:"ANNOTATE_POD_IP"`
	NetworkPolicyEnforcingMode string // NETWORK_POLICY_ENFORCING_MODE: ""|none|strict|standard (lower-cased)

	// Host networking.
	ExternalSNAT         bool           `env:"AWS_VPC_K8S_CNI_EXTERNALSNAT"`
	ExcludeSNATCIDRs     []netip.Prefix // AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS
	RandomizeSNAT        string         // AWS_VPC_K8S_CNI_RANDOMIZESNAT: prng|hashrandom|none
	VethPrefix           string         `env:"AWS_VPC_K8S_CNI_VETHPREFIX"` // default eni
	ENIMTU               int            // AWS_VPC_ENI_MTU (9001)
	NodePortSupport      bool           `env:"AWS_VPC_CNI_NODE_PORT_SUPPORT"` // default true
	Connmark             uint32         // AWS_VPC_K8S_CNI_CONNMARK (0x80)
	ExternalServiceCIDRs []netip.Prefix // AWS_EXTERNAL_SERVICE_CIDRS
	EnableV6Egress       bool           `env:"ENABLE_V6_EGRESS"`

	// AWS and Kubernetes endpoints.
	ClusterEndpoint string        // CLUSTER_ENDPOINT, a URL (a bare host[:port] gets https://)
	EC2Endpoint     string        `env:"AWS_EC2_ENDPOINT"`
	IMDSEndpoint    string        `env:"AWS_EC2_METADATA_SERVICE_ENDPOINT"`
	HTTPTimeout     time.Duration // HTTP_TIMEOUT (10 s, minimum 10 s)
	Version         string        `env:"VPC_CNI_VERSION"`
	Kubeconfig      string        `env:"KUBECONFIG"` // ipamd outside a pod
	NodeName        string        `env:"MY_NODE_NAME"`
	PodName         string        `env:"MY_POD_NAME"`

	// Files and servers.
	BackingStore         string `env:"AWS_VPC_K8S_CNI_BACKING_STORE,nonempty"`
	SocketPath           string `env:"VPC_CNI_IPAMD_SOCKET,nonempty"` // tests
	IntrospectionAddr    string `env:"INTROSPECTION_BIND_ADDRESS,nonempty"`
	DisableIntrospection bool   `env:"DISABLE_INTROSPECTION"`
	DisableMetrics       bool   `env:"DISABLE_METRICS"`
	MetricsAddr          string `env:"VPC_CNI_METRICS_ADDR,nonempty"` // tests; default :61678
	LogLevel             string // AWS_VPC_K8S_CNI_LOGLEVEL: debug|info|warn|error|fatal
	LogFile              string `env:"AWS_VPC_K8S_CNI_LOG_FILE,nonempty"` // stdout|stderr|path

	// Test-only.
	DisableHostNetwork bool `env:"VPC_CNI_DISABLE_HOST_NETWORK"`
	MaxPodsOverride    int  // VPC_CNI_MAX_PODS (0 = unset)
	FastIntervals      bool `env:"VPC_CNI_TEST_FAST_INTERVALS"`
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
	// The plain variables first (their fields' env tags), then those with
	// rules of their own; a rule may read a plain variable (ENABLE_POD_ENI).
	p.plain(&c)

	p.boolean("ENABLE_IPv6", &c.EnableIPv6)
	c.EnableIPv4 = !c.EnableIPv6 // absent: the family ENABLE_IPv6 does not pick
	p.boolean("ENABLE_IPv4", &c.EnableIPv4)

	p.nonNegInt("WARM_ENI_TARGET", &c.WarmENITarget, 1)
	p.nonNegInt("WARM_IP_TARGET", &c.WarmIPTarget, 0)
	p.nonNegInt("MINIMUM_IP_TARGET", &c.MinimumIPTarget, 0)
	p.nonNegInt("WARM_PREFIX_TARGET", &c.WarmPrefixTarget, 0)
	if v, ok := p.get("MAX_ENI"); ok && v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			p.warn("MAX_ENI", v, "not an integer", "unset (the instance type's limit)")
		case n < 1:
			c.MaxENI = -1 // upstream: used only if ≥ 1
		default:
			c.MaxENI = n
		}
	}
	if v, ok := p.get("IP_COOLDOWN_PERIOD"); ok && v != "" {
		// Refused, not defaulted: upstream's entrypoint refuses a bad value
		// before ipamd starts, and aws-node is judged as a whole.
		d, err := seconds(v, MaxIPCooldown)
		if err != nil {
			p.fail("IP_COOLDOWN_PERIOD", v, err.Error())
		} else {
			c.IPCooldown = d
		}
	}

	p.str("CLUSTER_ENDPOINT", &c.ClusterEndpoint)
	if c.ClusterEndpoint != "" && !strings.Contains(c.ClusterEndpoint, "://") {
		// client-go, which upstream hands the value to, dials a bare
		// host[:port] over HTTPS; our REST config wants a URL.
		c.ClusterEndpoint = "https://" + c.ClusterEndpoint
	}

	p.tags("ADDITIONAL_ENI_TAGS", &c.AdditionalENITags)

	if v, ok := p.get("POD_SECURITY_GROUP_ENFORCING_MODE"); ok && v != "" {
		switch l := strings.ToLower(v); {
		case l == "strict" || l == "standard":
			c.PodSGEnforcingMode = l
		case c.EnablePodENI:
			// The entrypoint refuses it too: pods with security groups
			// must not run under a mode nobody chose.
			p.fail("POD_SECURITY_GROUP_ENFORCING_MODE", v, "want strict or standard (ENABLE_POD_ENI=true)")
		default:
			p.warn("POD_SECURITY_GROUP_ENFORCING_MODE", v, "want strict or standard", "strict")
		}
	}
	p.oneOf("NETWORK_POLICY_ENFORCING_MODE", &c.NetworkPolicyEnforcingMode, true, "none", "strict", "standard")

	p.cidrs("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", &c.ExcludeSNATCIDRs)
	p.oneOfOr("AWS_VPC_K8S_CNI_RANDOMIZESNAT", &c.RandomizeSNAT, "prng", "hashrandom", "none")
	p.integer("AWS_VPC_ENI_MTU", &c.ENIMTU)
	if v, ok := p.get("AWS_VPC_K8S_CNI_CONNMARK"); ok {
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil || n <= 0 || n > 1<<32-1 {
			p.warn("AWS_VPC_K8S_CNI_CONNMARK", v, "want an integer mark in 1…0xffffffff (0x prefix allowed)", "0x80")
		} else {
			c.Connmark = uint32(n)
		}
	}
	p.cidrs("AWS_EXTERNAL_SERVICE_CIDRS", &c.ExternalServiceCIDRs)

	if v, ok := p.get("HTTP_TIMEOUT"); ok {
		// Upstream falls back to 10 s on a bad value; so do we, and a value
		// beyond MaxHTTPTimeout (or beyond int64) uses the maximum.
		d, err := seconds(v, MaxHTTPTimeout)
		switch {
		case err != nil && strings.HasPrefix(err.Error(), "above"):
			p.warn("HTTP_TIMEOUT", v, err.Error(), strconv.Itoa(int(MaxHTTPTimeout/time.Second)))
			c.HTTPTimeout = MaxHTTPTimeout
		case err != nil && strings.HasPrefix(err.Error(), "not"):
			p.warn("HTTP_TIMEOUT", v, "not an integer number of seconds", "10")
		case err != nil || d < MinHTTPTimeout:
			p.warn("HTTP_TIMEOUT", v, "below the minimum of 10 seconds", "10")
		default:
			c.HTTPTimeout = d
		}
	}

	p.oneOfOr("AWS_VPC_K8S_CNI_LOGLEVEL", &c.LogLevel, "debug", "info", "warn", "error", "fatal")

	p.strictNonNegInt("VPC_CNI_MAX_PODS", &c.MaxPodsOverride)

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
	if c.IPCooldown < 0 || c.IPCooldown > MaxIPCooldown {
		bad("IP_COOLDOWN_PERIOD=%s: must be within 0–%s", c.IPCooldown, MaxIPCooldown)
	}
	if err := vethname.ValidatePrefix(c.VethPrefix); err != nil {
		bad("AWS_VPC_K8S_CNI_VETHPREFIX=%q: %w", c.VethPrefix, err)
	}
	if err := CheckMTU(c.ENIMTU, c.EnableIPv6); err != nil {
		bad("AWS_VPC_ENI_MTU=%d: %w", c.ENIMTU, err)
	}
	if err := checkTags("ADDITIONAL_ENI_TAGS", c.AdditionalENITags, c.ClusterName); err != nil {
		errs = append(errs, err)
	}
	if c.SocketPath == "" {
		bad("VPC_CNI_IPAMD_SOCKET: empty socket path")
	}
	if c.BackingStore == "" {
		bad("AWS_VPC_K8S_CNI_BACKING_STORE: empty checkpoint path")
	}
	return errors.Join(errs...)
}

// MTU bounds of ENIs and pod veths (upstream's entrypoint range).
const (
	MinMTUv4 = 576
	MinMTUv6 = 1280
	MaxMTU   = 9001
)

// CheckMTU checks an MTU against the range of the cluster's address family.
func CheckMTU(mtu int, ipv6 bool) error {
	lo := MinMTUv4
	if ipv6 {
		lo = MinMTUv6
	}
	if mtu < lo || mtu > MaxMTU {
		return fmt.Errorf("must be within %d–%d", lo, MaxMTU)
	}
	return nil
}
