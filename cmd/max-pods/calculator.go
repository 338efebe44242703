package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// calcFlags are the flags of the EKS max-pods calculator
// (--instance-type, --cni-version, --cni-custom-networking-enabled,
// --cni-prefix-delegation-enabled, --cni-max-eni, --instance-type-from-imds,
// --show-max-allowed), accepted so a node bootstrap script calling it works
// with max-pods unchanged; they select one figure, printed alone.
type calcFlags struct {
	instanceType     string
	cniVersion       string
	customNetworking bool
	prefixDelegation bool
	maxENI           int
	// typeFromIMDS reads the instance type (and, lacking -region, the
	// region) from this node's instance metadata.
	typeFromIMDS bool
	// showMaxAllowed prints the figure without the prefix-delegation cap.
	showMaxAllowed bool
}

func (c *calcFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.instanceType, "instance-type", "", "instance type (as the EKS calculator; same as the argument)")
	fs.StringVar(&c.cniVersion, "cni-version", "", "VPC CNI version on the node, e.g. 1.23.1; prefix delegation needs 1.9.0 or later")
	fs.BoolVar(&c.customNetworking, "cni-custom-networking-enabled", false, "custom networking (AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true); prints one number")
	fs.BoolVar(&c.prefixDelegation, "cni-prefix-delegation-enabled", false, "prefix delegation (ENABLE_PREFIX_DELEGATION=true); prints one number")
	fs.IntVar(&c.maxENI, "cni-max-eni", 0, "MAX_ENI: ENIs per network card, when below the type's limit")
	fs.IntVar(&c.maxENI, "max-eni", 0, "same as -cni-max-eni")
	fs.BoolVar(&c.typeFromIMDS, "instance-type-from-imds", false, "read the instance type (and the region, without -region or AWS_REGION) from this node's instance metadata; prints one number")
	fs.BoolVar(&c.showMaxAllowed, "show-max-allowed", false, `the most pods the addresses allow, without the prefix-delegation cap (same as -cap none)`)
}

// set reports whether any flag that selects a single figure was given.
func (c calcFlags) set() bool {
	return c.instanceType != "" || c.cniVersion != "" || c.customNetworking || c.prefixDelegation || c.typeFromIMDS
}

// mode is the mode the flags select. Prefix delegation arrived in VPC CNI
// 1.9.0; an older one ignores ENABLE_PREFIX_DELEGATION and uses secondary IPs.
func (c calcFlags) mode() (Mode, error) {
	m := Mode{PrefixDelegation: c.prefixDelegation, CustomNetworking: c.customNetworking}
	if c.cniVersion == "" {
		return m, nil
	}
	major, minor, err := parseCNIVersion(c.cniVersion)
	if err != nil {
		return m, err
	}
	if major < 1 || major == 1 && minor < 9 {
		m.PrefixDelegation = false
	}
	return m, nil
}

// check refuses values the flags cannot mean, naming the flag.
func (c calcFlags) check() error {
	var errs []error
	if c.maxENI < 0 {
		errs = append(errs, fmt.Errorf("-cni-max-eni %d: want a positive number (0: the type's limit)", c.maxENI))
	}
	if c.cniVersion != "" {
		if _, _, err := parseCNIVersion(c.cniVersion); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// parseCNIVersion reads "1.23.1", "v1.9.0" or "1.18.3-eksbuild.2".
func parseCNIVersion(v string) (major, minor int, err error) {
	core, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), "-")
	core, _, _ = strings.Cut(core, "+")
	parts := strings.Split(core, ".")
	if len(parts) >= 2 && len(parts) <= 3 {
		major, err1 := strconv.Atoi(parts[0])
		minor, err2 := strconv.Atoi(parts[1])
		if err1 == nil && err2 == nil && major >= 0 && minor >= 0 {
			return major, minor, nil
		}
	}
	return 0, 0, fmt.Errorf("-cni-version %q: want a version such as 1.23.1", v)
}

// capENIs applies MAX_ENI as ipamd does: only from 1 up, and only below
// the type's limit.
func capENIs(enis, maxENI int) int {
	if maxENI >= 1 && maxENI < enis {
		return maxENI
	}
	return enis
}
