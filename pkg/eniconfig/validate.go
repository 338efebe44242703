package eniconfig

import (
	"errors"
	"fmt"
	"regexp"
)

var (
	subnetID = regexp.MustCompile(`^subnet-[0-9a-f]+$`)
	sgID     = regexp.MustCompile(`^sg-[0-9a-f]+$`)
)

// Validate checks that spec can be used to create ENIs: a subnet id and
// well-formed, distinct security-group ids. name is only used in messages.
func Validate(name string, spec Spec) error {
	var errs []error
	switch {
	case spec.Subnet == "":
		errs = append(errs, fmt.Errorf("ENIConfig %q: spec.subnet is empty", name))
	case !subnetID.MatchString(spec.Subnet):
		errs = append(errs, fmt.Errorf("ENIConfig %q: spec.subnet %q is not a subnet id (subnet-<hex>)", name, spec.Subnet))
	}
	seen := make(map[string]bool, len(spec.SecurityGroups))
	for i, sg := range spec.SecurityGroups {
		if !sgID.MatchString(sg) {
			errs = append(errs, fmt.Errorf("ENIConfig %q: spec.securityGroups[%d] %q is not a security group id (sg-<hex>)", name, i, sg))
			continue
		}
		if seen[sg] {
			errs = append(errs, fmt.Errorf("ENIConfig %q: spec.securityGroups[%d] %q is listed twice", name, i, sg))
		}
		seen[sg] = true
	}
	return errors.Join(errs...)
}
