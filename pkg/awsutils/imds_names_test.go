package awsutils

import (
	"errors"
	"fmt"
	"testing"
)

// TestIMDSErrorAPI: the api label upstream counts a failed metadata read
// under, or none (imds_names.go).
func TestIMDSErrorAPI(t *testing.T) {
	refused := errors.New("StatusCode: 500")
	body := fmt.Errorf("IMDS x: %w: %w", errIMDSBody, errors.New("unexpected EOF"))
	for _, c := range []struct {
		path string
		err  error
		want string
	}{
		{"network/interfaces/macs/", refused, "GetMACs"},
		{"network/interfaces/macs/0a:00:00:00:00:01/subnet-id", refused, "GetSubnetID"},
		{"network/interfaces/macs/0a:00:00:00:00:01/local-ipv4s", refused, "GetLocalIPv4s"},
		{"network/interfaces/macs/0a:00:00:00:00:01/interface-id", refused, ""},
		{"network/interfaces/macs/0a:00:00:00:00:01/interface-id", body, "GetInterfaceID"},
		{"network/interfaces/macs/0a:00:00:00:00:01/", refused, ""},
		{"mac", refused, ""},
		{"mac", body, "GetMAC"},
		{"ipv6", refused, "GetLocalIPv6"},
		{"placement/availability-zone", refused, ""},
	} {
		if got := imdsErrorAPI(c.path, c.err); got != c.want {
			t.Errorf("imdsErrorAPI(%q, %v) = %q, want %q", c.path, c.err, got, c.want)
		}
	}
}
