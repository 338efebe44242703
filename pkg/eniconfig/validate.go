package eniconfig

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
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

// ValidateName checks that name, as read from a node label or annotation,
// can name an ENIConfig at all: the API server accepts only DNS subdomain
// names (lowercase letters, digits, '-' and '.'), so a node naming anything
// else waits for an ENIConfig nobody can create.
func ValidateName(name string) error {
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("%q is not a valid object name, so no ENIConfig can have it: %s", name, strings.Join(msgs, "; "))
	}
	return nil
}

// Validate checks that the configured keys can be node label and
// annotation keys at all. A key no node can carry (two '/', a space or a
// '!' inside) never matches, and every node silently falls back to the next source.
func (s Selector) Validate() error {
	var errs []error
	for _, k := range [...]struct{ env, key string }{
		{"ENI_CONFIG_LABEL_DEF", s.LabelKey},
		{"ENI_CONFIG_ANNOTATION_DEF", s.AnnotationKey},
	} {
		if k.key == "" {
			continue // DefaultKey
		}
		if msgs := validation.IsQualifiedName(k.key); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s=%q is not a valid label or annotation key, so no node can carry it: %s", k.env, k.key, strings.Join(msgs, "; ")))
		}
	}
	return errors.Join(errs...)
}
