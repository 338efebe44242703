package vpcsim

import (
	"maps"
	"slices"
)

// ServedActions is every EC2 action vpcsim answers, for the protocol tests.
func ServedActions() []string { return slices.Sorted(maps.Keys(actions)) }
