package awsutils

import "slices"

// TrunkingCompatible reports whether instanceType can trunk ENIs, that is
// carry branch ENIs for security groups per pod. EC2's API does not say, so
// the answer comes from a static table of the types that cannot
// (trunking_table.go). A type the table does not list, including one newer
// than the table, counts as compatible, as upstream treats unknown types.
func TrunkingCompatible(instanceType string) bool {
	_, listed := slices.BinarySearch(nonTrunkingTypes, instanceType)
	return !listed
}
