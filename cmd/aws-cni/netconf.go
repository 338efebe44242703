package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// Netconf defaults and limits (reference §2.1).
const (
	defaultMTU       = 9001
	minMTU           = 576
	maxMTU           = 9001
	maxVethPrefixLen = 4

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
type netConf struct {
	types.PluginConf
	VethPrefix         string `json:"vethPrefix"`
	MTU                string `json:"mtu"`
	PodSGEnforcingMode string `json:"podSGEnforcingMode"`
	PluginLogFile      string `json:"pluginLogFile"`
	PluginLogLevel     string `json:"pluginLogLevel"`
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
	// Warnings name netconf values replaced by defaults, for the log.
	Warnings []string
}

// parseConfig decodes and validates the netconf. Errors are CNI errors:
// undecodable JSON is ErrDecodingFailure, bad values ErrInvalidNetworkConfig.
func parseConfig(stdin []byte) (*config, error) {
	var nc netConf
	if err := json.Unmarshal(stdin, &nc); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "decode netconf", err.Error())
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
	if len(c.VethPrefix) > maxVethPrefixLen {
		return nil, invalidConfig(fmt.Sprintf("vethPrefix %q is longer than %d characters", c.VethPrefix, maxVethPrefixLen), "")
	}
	var warn string
	c.MTU, warn = parseMTU(nc.MTU)
	c.addWarning(warn)
	c.StrictSG, warn = parseSGMode(nc.PodSGEnforcingMode)
	c.addWarning(warn)

	if err := version.ParsePrevResult(&nc.PluginConf); err != nil {
		return nil, invalidConfig("prevResult", err.Error())
	}
	if nc.PrevResult != nil {
		res, err := current.NewResultFromResult(nc.PrevResult)
		if err != nil {
			return nil, invalidConfig("prevResult", err.Error())
		}
		c.PrevResult = res
	}
	return c, nil
}

func (c *config) addWarning(w string) {
	if w != "" {
		c.Warnings = append(c.Warnings, w)
	}
}

// parseMTU converts the netconf's mtu string. Like upstream, a missing,
// non-integer or out-of-range value becomes 9001; unlike upstream, the
// replacement is reported.
func parseMTU(s string) (int, string) {
	if s == "" {
		return defaultMTU, ""
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || v < minMTU || v > maxMTU {
		return defaultMTU, fmt.Sprintf("mtu %q is not an integer in %d-%d; using %d", s, minMTU, maxMTU, defaultMTU)
	}
	return v, ""
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
		switch k {
		case "K8S_POD_NAME":
			a.PodName = v
		case "K8S_POD_NAMESPACE":
			a.PodNamespace = v
		case "K8S_POD_INFRA_CONTAINER_ID":
			a.InfraContainer = v
		case "K8S_POD_UID":
			a.PodUID = v
		}
	}
	return a, nil
}
