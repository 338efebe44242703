package resourcecontroller

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// branch_limits.tsv lists, per trunking-capable instance type, how many
// branch ENIs it carries. EC2's API does not publish the number; the table
// holds the facts the EKS controller uses (docs/compatibility.md, "Security
// groups for pods (branch ENIs, resource controller)").
//
//go:embed branch_limits.tsv
var branchLimitsTSV string

var branchLimits = sync.OnceValues(func() (map[string]int, error) {
	return parseBranchLimits(branchLimitsTSV)
})

func parseBranchLimits(tsv string) (map[string]int, error) {
	out := map[string]int{}
	for i, line := range strings.Split(tsv, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		typ, n, ok := strings.Cut(line, "\t")
		v, err := strconv.Atoi(n)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("branch_limits.tsv line %d: %q is not <type>\\t<count>", i+1, line)
		}
		out[typ] = v
	}
	return out, nil
}

// BranchLimit returns how many branch ENIs instanceType carries; ok is
// false for types that cannot trunk or that the table does not know.
func BranchLimit(instanceType string) (int, bool) {
	m, err := branchLimits()
	if err != nil {
		return 0, false
	}
	n, ok := m[instanceType]
	return n, ok
}
