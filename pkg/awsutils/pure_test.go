package awsutils

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

func TestSubnetEligibility(t *testing.T) {
	const primary = "subnet-primary"
	for _, tc := range []struct {
		name           string
		id             string
		tags           map[string]string
		cluster        string
		eligible, excl bool
	}{
		{"untagged primary", primary, nil, "c1", true, false},
		{"untagged other", "subnet-b", nil, "c1", false, false},
		{"role 0 primary", primary, map[string]string{TagSubnetRoleCNI: "0"}, "c1", false, true},
		{"role 0 other", "subnet-b", map[string]string{TagSubnetRoleCNI: "0"}, "", false, true},
		{"role 1 no cluster tags", "subnet-b", map[string]string{TagSubnetRoleCNI: "1"}, "c1", true, false},
		{"role empty value counts as tagged", "subnet-b", map[string]string{TagSubnetRoleCNI: ""}, "c1", true, false},
		{"role 1 our cluster", "subnet-b", map[string]string{TagSubnetRoleCNI: "1", TagSubnetClusterPrefix + "c1": "1"}, "c1", true, false},
		{"role 1 our cluster among others", "subnet-b", map[string]string{TagSubnetRoleCNI: "1", TagSubnetClusterPrefix + "c2": "1", TagSubnetClusterPrefix + "c1": "shared"}, "c1", true, false},
		{"role 1 other cluster", "subnet-b", map[string]string{TagSubnetRoleCNI: "1", TagSubnetClusterPrefix + "c2": "1"}, "c1", false, true},
		{"role 1 other cluster, no cluster name: check skipped", "subnet-b", map[string]string{TagSubnetRoleCNI: "1", TagSubnetClusterPrefix + "c2": "1"}, "", true, false},
		{"cluster tag without role tag", "subnet-b", map[string]string{TagSubnetClusterPrefix + "c1": "1"}, "c1", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Subnet{ID: tc.id, Tags: tc.tags}
			if got := SubnetEligible(s, primary, tc.cluster); got != tc.eligible {
				t.Errorf("SubnetEligible = %v, want %v", got, tc.eligible)
			}
			if got := SubnetExcluded(s, tc.cluster); got != tc.excl {
				t.Errorf("SubnetExcluded = %v, want %v", got, tc.excl)
			}
		})
	}
}

func TestDecideLeaked(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		tags map[string]string
		want LeakAction
	}{
		{"no createdAt", map[string]string{TagInstanceID: "i-1"}, LeakStamp},
		{"unparsable createdAt", map[string]string{TagCreatedAt: "yesterday"}, LeakStamp},
		{"young", map[string]string{TagCreatedAt: now.Add(-4 * time.Minute).Format(time.RFC3339)}, LeakSkip},
		{"in the future (clock skew)", map[string]string{TagCreatedAt: now.Add(time.Hour).Format(time.RFC3339)}, LeakSkip},
		{"exactly 5 minutes", map[string]string{TagCreatedAt: now.Add(-5 * time.Minute).Format(time.RFC3339)}, LeakDelete},
		{"old", map[string]string{TagCreatedAt: "2026-01-01T00:00:00Z"}, LeakDelete},
	} {
		if got := DecideLeaked(tc.tags, now); got != tc.want {
			t.Errorf("%s: DecideLeaked = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestENITags(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("x", 3600))
	got := ENITags("i-1", "prod", map[string]string{"team": "net", "my.k8s.amazonaws.com/x": "no"}, now)
	want := map[string]string{
		TagInstanceID:  "i-1",
		TagCreatedAt:   "2026-11-23T09:00:00Z",
		TagClusterName: "prod",
		TagENIOwner:    ENIOwnerCNI,
		"team":         "net",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tags (-want +got):\n%s", d)
	}
	got = ENITags("i-1", "", map[string]string{TagInstanceID: "spoof"}, now)
	if _, ok := got[TagClusterName]; ok || got[TagInstanceID] != "i-1" || len(got) != 2 {
		t.Errorf("tags without cluster = %v", got)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		action     string
		unfiltered bool
		want       LimitClass
	}{
		{"DescribeNetworkInterfaces", false, LimitDescribe},
		{"DescribeNetworkInterfaces", true, LimitDescribeUnfiltered},
		{"DescribeInstanceTypes", false, LimitDescribe},
		{"AttachNetworkInterface", false, LimitMutating},
		{"DetachNetworkInterface", false, LimitMutating},
		{"CreateNetworkInterface", false, LimitENI},
		{"DeleteNetworkInterface", false, LimitENI},
		{"AssignPrivateIpAddresses", false, LimitAddresses},
		{"UnassignIpv6Addresses", false, LimitAddresses},
		{"ModifyNetworkInterfaceAttribute", false, LimitAddresses},
		{"CreateTags", false, LimitTags},
	} {
		if got := classify(tc.action, tc.unfiltered); got != tc.want {
			t.Errorf("classify(%s, %v) = %s, want %s", tc.action, tc.unfiltered, got, tc.want)
		}
	}
}

func TestMissingENIIDs(t *testing.T) {
	asked := []string{"eni-0a", "eni-0b", "eni-0c"}
	for msg, want := range map[string][]string{
		"The networkInterface ID 'eni-0b' does not exist":        {"eni-0b"},
		"The networkInterface IDs 'eni-0a, eni-0c' do not exist": {"eni-0a", "eni-0c"},
		"The networkInterface ID 'eni-0zzz' does not exist":      nil,
		"something else entirely":                                nil,
	} {
		if d := cmp.Diff(want, missingENIIDs(msg, asked)); d != "" {
			t.Errorf("%q (-want +got):\n%s", msg, d)
		}
	}
}

func TestFreeDeviceIndexPure(t *testing.T) {
	att := []AttachedENI{{DeviceIndex: 0, NetworkCard: 0}, {DeviceIndex: 1, NetworkCard: 0}, {DeviceIndex: 3, NetworkCard: 0}, {DeviceIndex: 0, NetworkCard: 1}}
	if got, _ := FreeDeviceIndex(att, 0); got != 2 {
		t.Errorf("card 0: %d, want 2", got)
	}
	if got, _ := FreeDeviceIndex(att, 1); got != 1 {
		t.Errorf("card 1: %d, want 1", got)
	}
	if got, _ := FreeDeviceIndex(att, 2); got != 0 {
		t.Errorf("card 2: %d, want 0", got)
	}
	var full []AttachedENI
	for i := range maxDeviceIndex {
		full = append(full, AttachedENI{DeviceIndex: i})
	}
	if _, err := FreeDeviceIndex(full, 0); err == nil {
		t.Error("no error with every index used")
	}
}

func TestParseInstanceTypeUsesDefaultCardLimit(t *testing.T) {
	it := types.InstanceTypeInfo{
		InstanceType: "p4d.24xlarge",
		Hypervisor:   "nitro",
		NetworkInfo: &types.NetworkInfo{
			MaximumNetworkInterfaces:  aws.Int32(60),
			Ipv4AddressesPerInterface: aws.Int32(50),
			Ipv6AddressesPerInterface: aws.Int32(50),
			DefaultNetworkCardIndex:   aws.Int32(0),
			NetworkCards: []types.NetworkCardInfo{
				{NetworkCardIndex: aws.Int32(1), MaximumNetworkInterfaces: aws.Int32(15)},
				{NetworkCardIndex: aws.Int32(0), MaximumNetworkInterfaces: aws.Int32(15)},
			},
		},
	}
	got, err := parseInstanceType(it)
	if err != nil {
		t.Fatal(err)
	}
	want := InstanceTypeInfo{Type: "p4d.24xlarge", MaxENIs: 15, MaxENIsInstance: 60, IPv4PerENI: 50, IPv6PerENI: 50,
		NetworkCards: []NetworkCard{{0, 15}, {1, 15}}, Hypervisor: HypervisorNitro, Trunking: true}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	it.Hypervisor = ""
	it.NetworkInfo.Ipv4AddressesPerInterface = nil
	if _, err := parseInstanceType(it); err == nil {
		t.Error("no error for a type without an IPv4 limit")
	}
}

func TestParseENIRejectsBadAddresses(t *testing.T) {
	_, err := parseENI(types.NetworkInterface{
		NetworkInterfaceId: aws.String("eni-1"),
		PrivateIpAddresses: []types.NetworkInterfacePrivateIpAddress{{PrivateIpAddress: aws.String("10.0.0.300")}},
	})
	if err == nil {
		t.Fatal("bad address accepted")
	}
	eni, err := parseENI(types.NetworkInterface{
		NetworkInterfaceId: aws.String("eni-1"),
		PrivateIpAddress:   aws.String("10.0.0.5"),
		PrivateIpAddresses: []types.NetworkInterfacePrivateIpAddress{
			{PrivateIpAddress: aws.String("10.0.0.5"), Primary: aws.Bool(true)},
			{PrivateIpAddress: aws.String("10.0.0.6"), Primary: aws.Bool(false)},
		},
	})
	if err != nil || eni.PrivateIPv4 != netip.MustParseAddr("10.0.0.5") || len(eni.SecondaryIPv4) != 1 {
		t.Errorf("parseENI = %+v, %v", eni, err)
	}
}

func TestErrorClassifiers(t *testing.T) {
	apiErr := func(code string) error {
		return fmt.Errorf("op: %w", &smithy.GenericAPIError{Code: code, Message: "m"})
	}
	for _, tc := range []struct {
		code                                                string
		notFound, throttle, unauth, capacity, limit, server bool
	}{
		{code: CodeENINotFound, notFound: true},
		{code: CodeAttachmentNotFound, notFound: true},
		{code: CodeRequestLimitExceeded, throttle: true},
		{code: "Throttling", throttle: true},
		{code: CodeUnauthorized, unauth: true},
		{code: CodeInsufficientCidrBlocks, capacity: true},
		{code: CodeInsufficientFreeAddresses, capacity: true},
		{code: CodeAttachmentLimitExceeded, limit: true},
		{code: CodePrivateIPAddressLimitExceed, limit: true},
		{code: "InternalError", server: true},
		{code: "InvalidParameterValue"},
	} {
		err := apiErr(tc.code)
		if Code(err) != tc.code {
			t.Errorf("Code = %q, want %q", Code(err), tc.code)
		}
		got := [6]bool{IsNotFound(err), IsThrottle(err), IsUnauthorized(err), IsInsufficientCapacity(err), IsLimitExceeded(err), isServerError(err)}
		want := [6]bool{tc.notFound, tc.throttle, tc.unauth, tc.capacity, tc.limit, tc.server}
		if got != want {
			t.Errorf("%s: classifiers = %v, want %v", tc.code, got, want)
		}
	}
	if Code(errors.New("plain")) != "" || IsNotFound(nil) {
		t.Error("non-API errors must have no code")
	}
}
