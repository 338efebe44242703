package vpcsim

import "testing"

// Every served action has a parameter table, and no table names an action
// vpcsim does not serve: otherwise an action would accept any parameter.
func TestKnownParamsCoverEveryAction(t *testing.T) {
	for a := range actions {
		if _, ok := knownParams[a]; !ok {
			t.Errorf("action %s has no entry in knownParams", a)
		}
	}
	for a := range knownParams {
		if _, ok := actions[a]; !ok {
			t.Errorf("knownParams names %s, which vpcsim does not serve", a)
		}
	}
}

func TestUnknownParamNamesFirstInNameOrder(t *testing.T) {
	cases := []struct {
		action string
		names  []string
		want   string
	}{
		{"DescribeSubnets", []string{"Action", "Version", "Filter.1.Name", "Filter.1.Value.2", "SubnetId.10"}, ""},
		{"DescribeSubnets", []string{"Filter.1.Value", "Filters.1.Name", "Action"}, "Filter.1.Value"},
		{"DescribeSubnets", []string{"Filter.1", "Action"}, "Filter.1"},
		{"DescribeSubnets", []string{"Filter..Name"}, "Filter..Name"},
		{"AssignPrivateIpAddresses", []string{"NetworkInterfaceId", "DryRun"}, "DryRun"},
		{"ModifyNetworkInterfaceAttribute", []string{"NetworkInterfaceId", "SourceDestCheck"}, "SourceDestCheck"},
		{"CreateNetworkInterface", []string{"SubnetId", "X-Amz-Signature", "X-Amz-Credential", "TagSpecification.1.Tag.3.Value"}, ""},
	}
	for _, c := range cases {
		if got := unknownParam(c.action, c.names); got != c.want {
			t.Errorf("%s %v: unknown %q, want %q", c.action, c.names, got, c.want)
		}
	}
}
