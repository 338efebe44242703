package vpcsim

import (
	"strconv"
	"strings"
)

type filter struct {
	name   string
	values []string
}

func (p *params) filters() []filter {
	var out []filter
	for _, n := range p.indices("Filter") {
		base := "Filter." + strconv.Itoa(n)
		name := p.v.Get(base + ".Name")
		if name == "" {
			p.fail(apiErr("InvalidParameterValue", "The filter 'null' is invalid"))
			continue
		}
		out = append(out, filter{name: name, values: p.list(base + ".Value")})
	}
	return out
}

// fieldFunc returns the values a resource has for a filter name; ok=false
// means the filter name is unknown.
type fieldFunc[T any] func(x T, name string) (vals []string, ok bool)

// applyFilters keeps the items that match every filter (values are ORed and
// may use the * and ? wildcards). An unknown filter name is an error.
func applyFilters[T any](items []T, fs []filter, field fieldFunc[T]) ([]T, error) {
	var zero T
	for _, f := range fs {
		if _, ok := field(zero, f.name); !ok {
			return nil, apiErr("InvalidParameterValue", "The filter '%s' is invalid", f.name)
		}
	}
	var out []T
	for _, it := range items {
		if matchAll(it, fs, field) {
			out = append(out, it)
		}
	}
	return out, nil
}

func matchAll[T any](it T, fs []filter, field fieldFunc[T]) bool {
	for _, f := range fs {
		have, _ := field(it, f.name)
		if !matchAny(have, f.values) {
			return false
		}
	}
	return true
}

func matchAny(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if glob(w, h) {
				return true
			}
		}
	}
	return false
}

// glob matches EC2 filter wildcards: * any run, ? one character.
func glob(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			star, mark = px, sx
			px++
		case star >= 0:
			px = star + 1
			mark++
			sx = mark
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// placedField answers the filters every resource placed in a subnet shares
// (for a subnet, subnetID is its own id), then its tag filters.
func placedField(subnetID, vpcID, az string, tags map[string]string, name string) ([]string, bool) {
	switch name {
	case "subnet-id":
		return []string{subnetID}, true
	case "vpc-id":
		return []string{vpcID}, true
	case "availability-zone":
		return []string{az}, true
	}
	return tagField(tags, name)
}

// tagField answers tag-key, tag-value and tag:<key> filters.
func tagField(tags map[string]string, name string) ([]string, bool) {
	switch {
	case name == "tag-key":
		out := make([]string, 0, len(tags))
		for k := range tags {
			out = append(out, k)
		}
		return out, true
	case name == "tag-value":
		out := make([]string, 0, len(tags))
		for _, v := range tags {
			out = append(out, v)
		}
		return out, true
	case strings.HasPrefix(name, "tag:"):
		if v, ok := tags[strings.TrimPrefix(name, "tag:")]; ok {
			return []string{v}, true
		}
		return nil, true
	}
	return nil, false
}
