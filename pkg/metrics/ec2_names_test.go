package metrics

import (
	"slices"
	"testing"
	"time"
)

// upstreamEC2Labels: for each EC2 operation ipamd calls, the label value
// upstream's awsutils puts in awscni_aws_api_latency_ms{api},
// awscni_ec2api_req_count{fn} and awscni_ec2api_error_count{fn}, and
// awscni_aws_api_error_count{api}. Upstream names them by hand at each call;
// only AssignIpv6Addresses is timed under another name than it is counted,
// and DescribeInstanceTypes is counted only: an empty latency means no
// awscni_aws_api_latency_ms and no awscni_aws_api_error_count series
// (docs/compatibility.md, "Metrics"). The trunk calls are ours alone
// (upstream's ipamd leaves trunks to its resource controller): they keep
// their operation name everywhere.
var upstreamEC2Labels = map[string]struct{ latency, count string }{
	"AssignIpv6Addresses":                {"AssignIpv6AddressesWithContext", "AssignIpv6Addresses"},
	"AssignPrivateIpAddresses":           {"AssignPrivateIpAddresses", "AssignPrivateIpAddresses"},
	"AttachNetworkInterface":             {"AttachNetworkInterface", "AttachNetworkInterface"},
	"CreateNetworkInterface":             {"CreateNetworkInterface", "CreateNetworkInterface"},
	"CreateTags":                         {"CreateTags", "CreateTags"},
	"DeleteNetworkInterface":             {"DeleteNetworkInterface", "DeleteNetworkInterface"},
	"DescribeInstances":                  {"DescribeInstances", "DescribeInstances"},
	"DescribeInstanceTypes":              {"", "DescribeInstanceTypes"},
	"DescribeNetworkInterfaces":          {"DescribeNetworkInterfaces", "DescribeNetworkInterfaces"},
	"DescribeSubnets":                    {"DescribeSubnets", "DescribeSubnets"},
	"DetachNetworkInterface":             {"DetachNetworkInterface", "DetachNetworkInterface"},
	"ModifyNetworkInterfaceAttribute":    {"ModifyNetworkInterfaceAttribute", "ModifyNetworkInterfaceAttribute"},
	"UnassignIpv6Addresses":              {"UnassignIpv6Addresses", "UnassignIpv6Addresses"},
	"UnassignPrivateIpAddresses":         {"UnassignPrivateIpAddresses", "UnassignPrivateIpAddresses"},
	"AssociateTrunkInterface":            {"AssociateTrunkInterface", "AssociateTrunkInterface"},
	"DescribeTrunkInterfaceAssociations": {"DescribeTrunkInterfaceAssociations", "DescribeTrunkInterfaceAssociations"},
	"DisassociateTrunkInterface":         {"DisassociateTrunkInterface", "DisassociateTrunkInterface"},
}

// TestEC2SeriesCarryUpstreamLabelValues: each EC2 operation, one success
// and one failure with an EC2 error code, shows in every upstream series
// under upstream's label value for it, and under no other.
func TestEC2SeriesCarryUpstreamLabelValues(t *testing.T) {
	for action, want := range upstreamEC2Labels {
		m := New("v-test")
		m.ObserveEC2Call(action, 5*time.Millisecond, "")
		m.ObserveEC2Call(action, 5*time.Millisecond, "UnauthorizedOperation")
		for _, c := range []struct{ family, label, want string }{
			{"awscni_aws_api_latency_ms", "api", want.latency},
			{"awscni_ec2api_req_count", "fn", want.count},
			{"awscni_ec2api_error_count", "fn", want.count},
			{"awscni_aws_api_error_count", "api", want.count},
		} {
			got := labelValues(t, m, c.family, c.label)
			if want.latency == "" && (c.family == "awscni_aws_api_latency_ms" || c.family == "awscni_aws_api_error_count") {
				if len(got) > 0 {
					t.Errorf("%s: %s{%s} values %q, want none as upstream's", action, c.family, c.label, got)
				}
				continue
			}
			if !slices.Equal(got, []string{c.want}) {
				t.Errorf("%s: %s{%s} values %q, want [%q] as upstream's", action, c.family, c.label, got, c.want)
			}
		}
	}
}

// labelValues gathers the distinct values of label in family, sorted.
func labelValues(t *testing.T, m *Metrics, family, label string) []string {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != family {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == label && !slices.Contains(out, l.GetValue()) {
					out = append(out, l.GetValue())
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
