package vpcsim

import (
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// params reads EC2 Query parameters, remembering the first malformed one.
type params struct {
	v   url.Values
	err *APIError
	// dry: the request is a dry run (DryRun=true).
	dry bool
	// refs are the resources the request names, in the order read, which
	// a dry run checks exist.
	refs []idRef
}

func (p *params) fail(e *APIError) {
	if p.err == nil {
		p.err = e
	}
}

func (p *params) str(k string) string { return p.v.Get(k) }

func (p *params) has(k string) bool { _, ok := p.v[k]; return ok }

// encodeExcept is the request's parameters without the named ones, encoded
// in key order: equal requests give equal strings.
func (p *params) encodeExcept(skip ...string) string {
	v := url.Values{}
	for k, vals := range p.v {
		if !slices.Contains(skip, k) {
			v[k] = vals
		}
	}
	return v.Encode()
}

// int reads an optional integer; absent is 0. Present but empty is not
// absent: it is not a number.
func (p *params) int(k string) int {
	if !p.has(k) {
		return 0
	}
	s := p.v.Get(k)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1<<20 {
		p.fail(errInvalid(k, s))
		return 0
	}
	return n
}

// intp reads an optional integer, nil when absent.
func (p *params) intp(k string) *int {
	if !p.has(k) {
		return nil
	}
	n := p.int(k)
	return &n
}

// boolp reads an optional boolean, nil when absent (present but empty is
// not a boolean).
func (p *params) boolp(k string) *bool {
	if !p.has(k) {
		return nil
	}
	s := p.v.Get(k)
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.fail(errInvalid(k, s))
		return nil
	}
	return &b
}

// indices returns the sorted member numbers N of "prefix.N" and "prefix.N.*".
func (p *params) indices(prefix string) []int {
	seen := map[int]bool{}
	for k := range p.v {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			p.fail(apiErr("InvalidParameterValue", "Invalid list index in parameter %s", k))
			continue
		}
		seen[n] = true
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// list reads the flattened list prefix.1, prefix.2, ...
func (p *params) list(prefix string) []string {
	var out []string
	for _, n := range p.indices(prefix) {
		if v, ok := p.v[prefix+"."+strconv.Itoa(n)]; ok {
			out = append(out, v[0])
		}
	}
	return out
}

// members reads prefix.N.field for each N.
func (p *params) members(prefix, field string) []string {
	var out []string
	for _, n := range p.indices(prefix) {
		if v := p.v.Get(prefix + "." + strconv.Itoa(n) + "." + field); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (p *params) addrs(name string, vals []string, want4 bool) []netip.Addr {
	var out []netip.Addr
	for _, s := range vals {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Is4() != want4 || a.Zone() != "" {
			p.fail(errInvalid(name, s))
			continue
		}
		out = append(out, a)
	}
	return out
}

func (p *params) prefixes(name string, vals []string, want4 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range vals {
		pf, err := netip.ParsePrefix(s)
		if err != nil || pf.Addr().Is4() != want4 {
			p.fail(errInvalid(name, s))
			continue
		}
		out = append(out, pf)
	}
	return out
}

// tags reads prefix.N.Key / prefix.N.Value.
func (p *params) tags(prefix string) []tagKV {
	var out []tagKV
	for _, n := range p.indices(prefix) {
		base := prefix + "." + strconv.Itoa(n) + "."
		t := tagKV{Key: p.v.Get(base + "Key")}
		if vs, ok := p.v[base+"Value"]; ok {
			val := vs[0]
			t.Value = &val
		}
		out = append(out, t)
	}
	return out
}

// tagSpecs reads TagSpecification.N.{ResourceType,Tag.M.*} for one type.
func (p *params) tagSpecs(resourceType string) map[string]string {
	out := map[string]string{}
	for _, n := range p.indices("TagSpecification") {
		base := "TagSpecification." + strconv.Itoa(n)
		rt := p.v.Get(base + ".ResourceType")
		if rt != resourceType {
			p.fail(apiErr("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt))
			continue
		}
		for _, t := range p.tags(base + ".Tag") {
			if err := validateTagKey(t.Key); err != nil {
				p.fail(err.(*APIError))
				continue
			}
			if t.Value != nil {
				out[t.Key] = *t.Value
			} else {
				out[t.Key] = ""
			}
		}
	}
	return out
}
