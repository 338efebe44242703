package vpcsim

import (
	_ "embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// InstanceType holds the facts of one EC2 instance type that matter to
// networking, as DescribeInstanceTypes reports them.
type InstanceType struct {
	Name       string `json:"name"`
	VCPUs      int    `json:"vcpus"`
	MemoryMiB  int    `json:"memoryMiB"`
	Arch       string `json:"arch"`
	Hypervisor string `json:"hypervisor"` // "nitro", "xen" or "" (bare metal)
	BareMetal  bool   `json:"bareMetal"`
	MaxENIs    int    `json:"maxENIs"`    // instance-wide
	IPv4PerENI int    `json:"ipv4PerENI"` // including the primary address
	IPv6PerENI int    `json:"ipv6PerENI"`
	// Cards lists the network cards by index with their ENI capacity.
	Cards       []NetworkCard `json:"networkCards"`
	DefaultCard int           `json:"defaultNetworkCard"`
	Trunking    bool          `json:"trunking"`
	BranchENIs  int           `json:"branchInterfaces"`
}

// NetworkCard is one network card of an instance type.
type NetworkCard struct {
	Index   int `json:"index"`
	MaxENIs int `json:"maxENIs"`
}

// PrefixDelegation reports whether /28 prefixes can be assigned to ENIs of
// this type (Nitro or bare metal only).
func (t InstanceType) PrefixDelegation() bool { return t.Hypervisor == "nitro" || t.BareMetal }

//go:embed catalog.tsv
var catalogTSV string

var catalog = mustParseCatalog(catalogTSV)

// InstanceTypes returns the simulator's catalog sorted by name.
func InstanceTypes() []InstanceType {
	out := make([]InstanceType, 0, len(catalog))
	for _, t := range catalog {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupInstanceType returns the catalog entry for name.
func LookupInstanceType(name string) (InstanceType, bool) {
	t, ok := catalog[name]
	return t, ok
}

func mustParseCatalog(src string) map[string]InstanceType {
	m, err := parseCatalog(src)
	if err != nil {
		panic(err) // the catalog is embedded at build time; a bad row is a programming error
	}
	return m
}

func parseCatalog(src string) (map[string]InstanceType, error) {
	out := map[string]InstanceType{}
	for n, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 13 {
			return nil, fmt.Errorf("catalog line %d: want 13 columns, got %d", n+1, len(f))
		}
		var t InstanceType
		var err error
		num := func(s string) int {
			v, e := strconv.Atoi(s)
			if e != nil && err == nil {
				err = fmt.Errorf("catalog line %d: bad number %q", n+1, s)
			}
			return v
		}
		t.Name = f[0]
		t.VCPUs = num(f[1])
		t.MemoryMiB = num(f[2])
		t.Arch = f[3]
		if f[4] != "-" {
			t.Hypervisor = f[4]
		}
		t.BareMetal = f[5] == "true"
		t.MaxENIs = num(f[6])
		t.IPv4PerENI = num(f[7])
		t.IPv6PerENI = num(f[8])
		for _, c := range strings.Split(f[9], ",") {
			idx, max, ok := strings.Cut(c, ":")
			if !ok {
				return nil, fmt.Errorf("catalog line %d: bad card %q", n+1, c)
			}
			t.Cards = append(t.Cards, NetworkCard{Index: num(idx), MaxENIs: num(max)})
		}
		t.DefaultCard = num(f[10])
		t.Trunking = f[11] == "true"
		t.BranchENIs = num(f[12])
		if err != nil {
			return nil, err
		}
		out[t.Name] = t
	}
	return out, nil
}
