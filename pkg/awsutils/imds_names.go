package awsutils

import (
	"errors"
	"strings"
)

// codeIMDSRequest is the error code upstream's instance-metadata getters
// give the failures they wrap in their own error type.
const codeIMDSRequest = "IMDSRequestError"

// errIMDSBody marks a read whose answer came but whose body could not be
// read: every upstream getter wraps that one in its own error type.
var errIMDSBody = errors.New("reading the body")

// imdsGetters names, by metadata field, upstream's getter reading it, as
// awscni_aws_api_error_count{api} shows its failures; wraps is true where
// the getter wraps a failed request in its own error type, which upstream's
// counter counts, and false where it hands the SDK's error back as it is,
// which the counter skips (docs/compatibility.md, "Metrics").
var imdsGetters = map[string]struct {
	name  string
	wraps bool
}{
	"mac":                     {"GetMAC", false},
	"local-ipv4":              {"GetLocalIPv4", false},
	"ipv6":                    {"GetLocalIPv6", true},
	"interface-id":            {"GetInterfaceID", false},
	"device-number":           {"GetDeviceNumber", false},
	"network-card":            {"GetNetworkCard", true},
	"subnet-id":               {"GetSubnetID", true},
	"vpc-id":                  {"GetVpcID", true},
	"security-group-ids":      {"GetSecurityGroupIDs", true},
	"local-ipv4s":             {"GetLocalIPv4s", true},
	"ipv6s":                   {"GetIPv6s", true},
	"ipv4-prefix":             {"GetIPv4Prefixes", true},
	"ipv6-prefix":             {"GetIPv6Prefixes", true},
	"subnet-ipv4-cidr-block":  {"GetSubnetIPv4CIDRBlock", true},
	"subnet-ipv6-cidr-blocks": {"GetSubnetIPv6CIDRBlocks", true},
	"vpc-ipv4-cidr-blocks":    {"GetVPCIPv4CIDRBlocks", true},
	"vpc-ipv6-cidr-blocks":    {"GetVPCIPv6CIDRBlocks", true},
}

// imdsErrorAPI is the api label under which upstream counts a failed read
// of path (err), or "" when it counts none. Upstream never counts a failed
// read of an ENI's field list nor of the identity document.
func imdsErrorAPI(path string, err error) string {
	const macs = "network/interfaces/macs/"
	field := path
	if path == macs {
		return "GetMACs"
	}
	if rest, ok := strings.CutPrefix(path, macs); ok {
		_, field, _ = strings.Cut(rest, "/")
	}
	g, ok := imdsGetters[field]
	if !ok || (!g.wraps && !errors.Is(err, errIMDSBody)) {
		return ""
	}
	return g.name
}
