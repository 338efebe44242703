package vpcsim

import (
	"maps"
	"slices"
)

// sameCreateENI reports whether two CreateNetworkInterface calls carry the
// same parameters, so one ClientToken may answer both. Everything the caller
// sent counts; only the id a scenario may preset and the token itself do not.
func sameCreateENI(a, b createENIReq) bool {
	return a.SubnetID == b.SubnetID &&
		a.Description == b.Description &&
		slices.Equal(a.Groups, b.Groups) &&
		a.InterfaceType == b.InterfaceType &&
		a.PrimaryIP == b.PrimaryIP &&
		slices.Equal(a.SecondaryIPs, b.SecondaryIPs) &&
		a.SecondaryCount == b.SecondaryCount &&
		a.PrefixCount == b.PrefixCount &&
		slices.Equal(a.Prefixes, b.Prefixes) &&
		a.IPv6Count == b.IPv6Count &&
		slices.Equal(a.IPv6s, b.IPv6s) &&
		a.IPv6PrefixCount == b.IPv6PrefixCount &&
		slices.Equal(a.IPv6Prefixes, b.IPv6Prefixes) &&
		maps.Equal(a.Tags, b.Tags) &&
		a.Wire == b.Wire
}
