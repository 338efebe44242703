package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/pluginlog"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// Netconf defaults and limits (docs/compatibility.md, "Plugin (aws-cni) and runtime input").
const (
	defaultMTU = 9001
	minMTU     = 576
	maxMTU     = 9001
	// minMTUv6 is IPv6's minimum link MTU: below it the kernel disables
	// IPv6 on the interface.
	minMTUv6 = 1280

	// maxK8sNameLen is Kubernetes' limit on pod names and namespaces
	// (DNS subdomain); ipamd checkpoints both on every ADD and DEL.
	maxK8sNameLen = 253
	// maxIfNameLen is the kernel's limit (IFNAMSIZ less the NUL).
	maxIfNameLen = 15
	// maxContainerIDLen bounds the container id an ADD takes: runtimes
	// send 64 hex digits, and ipamd keeps the id in its datastore and
	// checkpoint for the pod's life.
	maxContainerIDLen = 1024
	// loopbackIfName is the loopback interface every network namespace has.
	loopbackIfName = "lo"

	modeStrict   = "strict"
	modeStandard = "standard"

	// podAnnotationsCap is the runtimeConfig key under which the runtime
	// passes the pod's annotations (declared as a capability in the conflist).
	podAnnotationsCap = "io.kubernetes.cri.pod-annotations"
	nicConfigKey      = "k8s.amazonaws.com/nicConfig"
	multiNICValue     = "multi-nic-attachment"
)

// netConf is the plugin's entry of 10-aws.conflist as the runtime passes it
// on stdin. Every value of the template is a JSON string, mtu included.
// It holds only what the plugin reads: encoding/json's first decode of a
// type costs in proportion to its fields, on every ADD, and the runtime
// has already decoded the rest of the CNI library's NetConf (type,
// capabilities, ipam, dns) when it loaded the conflist.
type netConf struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	// RawPrevResult is decoded on its own (parsePrevResult): a prevResult
	// that is no JSON object must not fail the decode of the whole
	// netconf, or a DEL carrying it would fail and be retried forever.
	RawPrevResult      json.RawMessage `json:"prevResult,omitempty"`
	VethPrefix         string          `json:"vethPrefix"`
	MTU                string          `json:"mtu"`
	PodSGEnforcingMode string          `json:"podSGEnforcingMode"`
	PluginLogFile      string          `json:"pluginLogFile"`
	PluginLogLevel     string          `json:"pluginLogLevel"`
	// IpamdSocket and NPASocket override the daemons' unix socket paths
	// (vpc-cni extension; absent from upstream's conflist).
	IpamdSocket   string `json:"ipamdSocket,omitempty"`
	NPASocket     string `json:"npaSocket,omitempty"`
	RuntimeConfig struct {
		PodAnnotations map[string]string `json:"io.kubernetes.cri.pod-annotations,omitempty"`
	} `json:"runtimeConfig"`
}

// config is the validated netconf the commands work from.
type config struct {
	Name       string
	CNIVersion string
	VethPrefix string
	MTU        int
	// StrictSG is the security-groups-per-pod enforcing mode.
	StrictSG    bool
	MultiNIC    bool
	LogFile     string
	LogLevel    string
	IpamdSocket string
	NPASocket   string
	PrevResult  *current.Result
	// PrevResultErr says why a prevResult the runtime sent is unusable
	// (PrevResult is then nil): ADD and CHECK refuse it, DEL goes on
	// without it, as a DEL that fails is retried forever.
	PrevResultErr error
	// Warnings name netconf values replaced by defaults, for the log.
	Warnings []string
}

// parseConfig decodes and validates the netconf. Errors are CNI errors:
// undecodable JSON is ErrDecodingFailure, bad values ErrInvalidNetworkConfig.
func parseConfig(stdin []byte) (*config, error) {
	nc, ok := scanNetConf(stdin)
	if !ok {
		if err := json.Unmarshal(stdin, &nc); err != nil {
			return nil, types.NewError(types.ErrDecodingFailure, "decode netconf", err.Error())
		}
	}
	c := &config{
		Name:        nc.Name,
		CNIVersion:  nc.CNIVersion,
		VethPrefix:  nc.VethPrefix,
		LogFile:     nc.PluginLogFile,
		LogLevel:    nc.PluginLogLevel,
		IpamdSocket: nc.IpamdSocket,
		NPASocket:   nc.NPASocket,
		MultiNIC:    nc.RuntimeConfig.PodAnnotations[nicConfigKey] == multiNICValue,
	}
	if c.Name == "" {
		return nil, invalidConfig("netconf has no network name", "")
	}
	if c.VethPrefix == "" {
		c.VethPrefix = vethname.DefaultPrefix
	}
	// The rule ipamd and the entrypoint apply too, so a prefix accepted
	// here is accepted everywhere.
	if err := vethname.ValidatePrefix(c.VethPrefix); err != nil {
		return nil, invalidConfig("netconf vethPrefix: "+err.Error(), "")
	}
	mtu, err := parseMTU(nc.MTU)
	if err != nil {
		return nil, invalidConfig(err.Error(), "")
	}
	c.MTU = mtu
	var warn string
	c.StrictSG, warn = parseSGMode(nc.PodSGEnforcingMode)
	c.addWarning(warn)
	c.addWarning(pluginlog.UnknownLevel(nc.PluginLogLevel))

	c.PrevResult, c.PrevResultErr = parsePrevResult(nc.CNIVersion, nc.Name, nc.RawPrevResult)
	return c, nil
}

// parsePrevResult converts the netconf's prevResult, nil when there is
// none. Null entries in its lists are refused before the CNI library's
// conversion from older versions dereferences them.
func parsePrevResult(cniVersion, name string, rawJSON json.RawMessage) (*current.Result, error) {
	if len(rawJSON) == 0 {
		return nil, nil
	}
	var raw map[string]any
	if err := json.Unmarshal(rawJSON, &raw); err != nil {
		return nil, fmt.Errorf("prevResult is not a JSON object: %w", err)
	}
	if raw == nil { // JSON null
		return nil, nil
	}
	for _, key := range []string{"interfaces", "ips", "routes"} {
		list, _ := raw[key].([]any)
		if i := slices.IndexFunc(list, func(v any) bool { return v == nil }); i >= 0 {
			return nil, fmt.Errorf("prevResult %s[%d] is null", key, i)
		}
	}
	pc := types.PluginConf{CNIVersion: cniVersion, Name: name, RawPrevResult: raw}
	if err := version.ParsePrevResult(&pc); err != nil {
		return nil, err
	}
	if pc.PrevResult == nil {
		return nil, nil
	}
	return current.NewResultFromResult(pc.PrevResult)
}

func (c *config) addWarning(w string) {
	if w != "" {
		c.Warnings = append(c.Warnings, w)
	}
}

// parseMTU converts the netconf's mtu string; empty means 9001. Upstream
// silently replaces a bad value by 9001; the entrypoint never writes one,
// so a bad value is a hand-edited conflist and is refused with the range
// (docs/compatibility.md, "Plugin (aws-cni) and runtime input").
func parseMTU(s string) (int, error) {
	if s == "" {
		return defaultMTU, nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || v < minMTU || v > maxMTU {
		return 0, fmt.Errorf("netconf mtu %q is not an integer in %d-%d", s, minMTU, maxMTU)
	}
	return v, nil
}

// parseSGMode reports whether branch-ENI pods are wired in strict mode.
// Unknown values fall back to strict, as ipamd does.
func parseSGMode(s string) (bool, string) {
	switch strings.ToLower(s) {
	case "", modeStrict:
		return true, ""
	case modeStandard:
		return false, ""
	}
	return true, fmt.Sprintf("podSGEnforcingMode %q is neither %q nor %q; using %q", s, modeStrict, modeStandard, modeStrict)
}

// k8sArgs are the Kubernetes values the runtime passes in CNI_ARGS.
type k8sArgs struct {
	PodName        string
	PodNamespace   string
	InfraContainer string
	PodUID         string
	// twice says which keys CNI_ARGS gave twice with different values
	// ("" when none): the last is taken, as older builds did, but an ADD
	// refuses them.
	twice string
}

// parseK8sArgs reads CNI_ARGS ("K1=v1;K2=v2"). Unknown keys are ignored, as
// runtimes add their own; a pair without "=" is an error.
func parseK8sArgs(s string) (k8sArgs, error) {
	var a k8sArgs
	if s == "" {
		return a, nil
	}
	for _, pair := range strings.Split(s, ";") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return a, invalidConfig(fmt.Sprintf("CNI_ARGS entry %q is not KEY=VALUE", pair), "")
		}
		var field *string
		switch k {
		case "K8S_POD_NAME":
			field = &a.PodName
		case "K8S_POD_NAMESPACE":
			field = &a.PodNamespace
		case "K8S_POD_INFRA_CONTAINER_ID":
			field = &a.InfraContainer
		case "K8S_POD_UID":
			field = &a.PodUID
		default:
			continue
		}
		if *field != "" && *field != v {
			a.twice += fmt.Sprintf("CNI_ARGS %s is given twice (%q, %q); ", k, *field, v)
		}
		*field = v
	}
	return a, nil
}

// k8sArg is one CNI_ARGS value with its key.
type k8sArg struct{ key, v string }

// sent are the CNI_ARGS values the plugin sends to ipamd.
func (a k8sArgs) sent() []k8sArg {
	return []k8sArg{
		{"K8S_POD_NAME", a.PodName}, {"K8S_POD_NAMESPACE", a.PodNamespace},
		{"K8S_POD_INFRA_CONTAINER_ID", a.InfraContainer}, {"K8S_POD_UID", a.PodUID},
	}
}

// checkK8sArgLengths refuses a CNI_ARGS value longer than any Kubernetes
// name. Only ADD and CHECK apply it: a DEL must succeed on input no ADD
// took, or the runtime retries it forever, and DEL uses the values only
// hashed into interface and lock names or as ipamd lookup keys.
func checkK8sArgLengths(a k8sArgs) *types.Error {
	for _, f := range a.sent() {
		if len(f.v) > maxK8sNameLen {
			return invalidConfig(fmt.Sprintf("CNI_ARGS %s is %d characters long, at most %d allowed", f.key, len(f.v), maxK8sNameLen), "")
		}
	}
	return nil
}

// sysctlDirNames are the entries of /proc/sys/net/ipv{4,6}/conf/ beside
// the interfaces': the kernel refuses an interface of such a name.
var sysctlDirNames = []string{"all", "default"}

// checkAddInput refuses runtime input that is well formed but that no ADD
// can wire, or should, before ipamd is asked for an address: a CNI_ARGS
// value longer than any Kubernetes name, CNI_IFNAME naming the
// namespace's loopback (the pod's end of the veth cannot take its name)
// or "all" or "default" (no interface can), a container id longer than
// maxContainerIDLen, a CNI_ARGS key
// given twice with different values (which pod is meant?), and a pod name
// or namespace with '/' (no Kubernetes name has one, and ipamd keys pods
// by "namespace/name", so "a/b" in "c" and "b" in "c/a" would be one),
// a namespace with '.' (no namespace has one, and the pod's host veth
// would be another pod's), a CNI_ARGS value or CNI_IFNAME that is not
// UTF-8, and a CNI_IFNAME with '%' (a pattern to the kernel).
// DEL does not check them: older builds took such input, and a DEL
// failing on it would be retried by the runtime forever.
func checkAddInput(ifName, containerID string, k k8sArgs) *types.Error {
	if err := checkK8sArgLengths(k); err != nil {
		return err
	}
	if k.twice != "" {
		return invalidConfig(strings.TrimSuffix(k.twice, "; "), "")
	}
	for _, f := range []struct{ key, v string }{{"K8S_POD_NAME", k.PodName}, {"K8S_POD_NAMESPACE", k.PodNamespace}} {
		if strings.Contains(f.v, "/") {
			return invalidConfig(fmt.Sprintf("CNI_ARGS %s %q contains '/'", f.key, f.v), "")
		}
	}
	// A pod's host veth is named by a hash of "<namespace>.<name>", and
	// pod names may contain '.': namespace "a.b" with pod "c" would take
	// the veth of pod "b.c" in namespace "a", whose ADD deletes it as a
	// stale one. No namespace (a DNS label) has a '.'.
	if strings.Contains(k.PodNamespace, ".") {
		return invalidConfig(fmt.Sprintf("CNI_ARGS K8S_POD_NAMESPACE %q contains '.'", k.PodNamespace), "")
	}
	// ipamd and the network policy agent decode protobuf strings, which
	// must be UTF-8: such a value would fail there with a decoding error
	// that names no input.
	for _, f := range k.sent() {
		if !utf8.ValidString(f.v) {
			return invalidConfig(fmt.Sprintf("CNI_ARGS %s %q is not valid UTF-8", f.key, f.v), "")
		}
	}
	// The kernel takes such a name, ipamd's protobuf decoding does not
	// (see above).
	if !utf8.ValidString(ifName) {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_IFNAME %q is not valid UTF-8", ifName), "")
	}
	// The kernel names a new link "eth%d" eth0, eth1, ...: the pod's end
	// would not be found under the name, nor removed by the rollback.
	if strings.Contains(ifName, "%") {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_IFNAME %q contains '%%', which the kernel reads as a pattern", ifName), "")
	}
	if ifName == loopbackIfName {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_IFNAME %q is the namespace's loopback interface", ifName), "")
	}
	if slices.Contains(sysctlDirNames, ifName) {
		return types.NewError(types.ErrInvalidEnvironmentVariables,
			fmt.Sprintf("CNI_IFNAME %q is not a name the kernel gives an interface (its per-interface sysctl directories use it)", ifName), "")
	}
	if n := len(containerID); n > maxContainerIDLen {
		return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_CONTAINERID is %d characters long, at most %d allowed", n, maxContainerIDLen), "")
	}
	return nil
}

// validateIfName applies the kernel's rule for interface names to
// CNI_IFNAME: 1-15 bytes, not "." or "..", no '/', ':' or white space.
func validateIfName(name string) *types.Error {
	bad := ""
	switch {
	case name == "":
		bad = "is empty"
	case len(name) > maxIfNameLen:
		bad = fmt.Sprintf("is %d characters long, at most %d allowed", len(name), maxIfNameLen)
	case name == "." || name == "..":
		bad = "is not an interface name"
	case strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || r <= ' ' || r == 0x7f }):
		bad = "contains '/', ':', a space or a control character"
	}
	if bad == "" {
		return nil
	}
	return types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("CNI_IFNAME %q %s", name, bad), "")
}
