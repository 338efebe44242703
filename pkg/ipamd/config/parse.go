package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// parser collects errors and warnings while reading variables.
type parser struct {
	lookup   func(string) (string, bool)
	errs     []error
	warnings []string
}

// plain parses each Config field tagged env:"NAME", in field order: a bool
// as boolean, a string as str, or with ",nonempty" as nonEmptyString. The
// tag names the variable once, beside the field it sets.
func (p *parser) plain(c *Config) {
	v := reflect.ValueOf(c).Elem()
	for _, f := range reflect.VisibleFields(v.Type()) {
		tag, ok := f.Tag.Lookup("env")
		if !ok {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		switch dst := v.FieldByIndex(f.Index).Addr().Interface().(type) {
		case *bool:
			p.boolean(name, dst)
		case *string:
			if opt == "nonempty" {
				p.nonEmptyString(name, dst)
			} else {
				p.str(name, dst)
			}
		default:
			panic(fmt.Sprintf("config: env tag on %s of type %s", f.Name, f.Type))
		}
	}
}

// get returns the value as written: upstream trims none, so " true" is
// no boolean there and the default applies; each parser warns about (or
// refuses) what it cannot use, as it does for any other bad value.
func (p *parser) get(name string) (string, bool) {
	return p.lookup(name)
}

func (p *parser) fail(name, value, why string) {
	p.errs = append(p.errs, fmt.Errorf("%s=%q: %s", name, value, why))
}

// warn records a value upstream would also not use, and what is used
// instead.
func (p *parser) warn(name, value, why, using string) {
	p.warnings = append(p.warnings, fmt.Sprintf("%s=%q: %s; using %s", name, value, why, using))
}

// boolean: an unparsable value keeps the default, as upstream.
func (p *parser) boolean(name string, dst *bool) {
	v, ok := p.get(name)
	if !ok || v == "" { // upstream: empty means default
		return
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.warn(name, v, "not a boolean (want true or false)", strconv.FormatBool(*dst))
		return
	}
	*dst = b
}

// integer refuses a value that is not an integer (for variables upstream's
// entrypoint refuses).
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

// nonNegInt: a negative or unparsable value becomes fallback, as upstream.
func (p *parser) nonNegInt(name string, dst *int, fallback int) {
	v, ok := p.get(name)
	if !ok || v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		p.warn(name, v, "not an integer", strconv.Itoa(fallback))
		*dst = fallback
	case n < 0:
		p.warn(name, v, "must not be negative", strconv.Itoa(fallback))
		*dst = fallback
	default:
		*dst = n
	}
}

// strictNonNegInt refuses a negative or unparsable value (test-only
// variables: a test asked for something specific).
func (p *parser) strictNonNegInt(name string, dst *int) {
	v, ok := p.get(name)
	if !ok || v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		p.fail(name, v, "want a non-negative integer")
		return
	}
	*dst = n
}

func (p *parser) str(name string, dst *string) {
	if v, ok := p.get(name); ok {
		p.warnPadded(name, v)
		*dst = v
	}
}

func (p *parser) nonEmptyString(name string, dst *string) {
	if v, ok := p.get(name); ok && v != "" {
		p.warnPadded(name, v)
		*dst = v
	}
}

// warnPadded flags a string with white space around it: used as written,
// as upstream does, but more likely a slip than meant.
func (p *parser) warnPadded(name, v string) {
	if v != strings.TrimSpace(v) {
		p.warnings = append(p.warnings, fmt.Sprintf("%s=%q: white space around the value is kept, as upstream keeps it", name, v))
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

// oneOfOr is oneOf falling back to the current value (the default) with a
// warning, as upstream does.
func (p *parser) oneOfOr(name string, dst *string, allowed ...string) {
	v, ok := p.get(name)
	if !ok || v == "" {
		return
	}
	l := strings.ToLower(v)
	if !slices.Contains(allowed, l) {
		p.warn(name, v, "want one of "+strings.Join(allowed, ", "), *dst)
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
			p.warnings = append(p.warnings, fmt.Sprintf("%s=%q: entry %q is not an IPv4 CIDR; skipped", name, v, s))
			continue
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
		p.warnings = append(p.warnings, fmt.Sprintf("%s=%q: not a JSON object of string values (%v); ignored", name, v, err))
		return
	}
	for k := range m {
		if strings.Contains(k, "k8s.amazonaws.com") {
			p.warnings = append(p.warnings, fmt.Sprintf("%s: tag key %q is reserved (contains k8s.amazonaws.com); dropped", name, k))
			delete(m, k)
		}
	}
	*dst = m
}
