package vpcsim_test

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// A dry run answers DryRunOperation only for a request that would have
// been carried out: a missing or malformed parameter and a resource that
// does not exist are answered as without DryRun (docs/compatibility.md,
// "vpcsim: fidelity to EC2"). Before, every DryRun=true request with the
// permission answered DryRunOperation, whatever it named.
func TestDryRunChecksParametersAndResourcesFirst(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	inst, err := env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	const (
		noENI    = "eni-0000000000000dead"
		noInst   = "i-0000000000000dead"
		noSubnet = "subnet-0000000000000dead"
		noGroup  = "sg-0000000000000dead"
		noAttach = "eni-attach-0000000000000dead"
		noAssoc  = "trunk-assoc-0000000000000dead"
	)
	cases := []struct {
		form   string
		status int
		want   string
	}{
		{"Action=DeleteNetworkInterface", 400, "<Code>MissingParameter</Code><Message>The request must contain the parameter NetworkInterfaceId</Message>"},
		{"Action=DeleteNetworkInterface&NetworkInterfaceId=bogus", 400, "<Code>InvalidNetworkInterfaceID.Malformed</Code>"},
		{"Action=DeleteNetworkInterface&NetworkInterfaceId=" + noENI, 400, "<Code>InvalidNetworkInterfaceID.NotFound</Code>"},
		{"Action=DetachNetworkInterface", 400, "<Code>MissingParameter</Code>"},
		{"Action=DetachNetworkInterface&AttachmentId=" + noAttach, 400, "<Code>InvalidAttachmentID.NotFound</Code>"},
		{"Action=AttachNetworkInterface&NetworkInterfaceId=" + inst.PrimaryENI + "&InstanceId=" + simtest.InstanceID, 400, "<Code>MissingParameter</Code><Message>The request must contain the parameter DeviceIndex</Message>"},
		{"Action=AttachNetworkInterface&NetworkInterfaceId=" + inst.PrimaryENI + "&InstanceId=" + noInst + "&DeviceIndex=1", 400, "<Code>InvalidInstanceID.NotFound</Code>"},
		{"Action=CreateNetworkInterface", 400, "<Code>MissingParameter</Code><Message>The request must contain the parameter SubnetId</Message>"},
		{"Action=CreateNetworkInterface&SubnetId=" + noSubnet, 400, "<Code>InvalidSubnetID.NotFound</Code>"},
		{"Action=CreateNetworkInterface&SubnetId=" + simtest.NodeSubnetID + "&SecurityGroupId.1=" + noGroup, 400, "<Code>InvalidGroup.NotFound</Code>"},
		{"Action=ModifyNetworkInterfaceAttribute&NetworkInterfaceId=" + noENI + "&SourceDestCheck.Value=false", 400, "<Code>InvalidNetworkInterfaceID.NotFound</Code>"},
		{"Action=ModifyNetworkInterfaceAttribute&NetworkInterfaceId=" + inst.PrimaryENI, 400, "<Code>MissingParameter</Code>"},
		{"Action=TerminateInstances", 400, "<Code>MissingParameter</Code>"},
		{"Action=TerminateInstances&InstanceId.1=" + noInst, 400, "<Code>InvalidInstanceID.NotFound</Code>"},
		{"Action=ModifyInstanceMetadataOptions&InstanceId=" + noInst + "&HttpTokens=required", 400, "<Code>InvalidInstanceID.NotFound</Code>"},
		{"Action=CreateTags&ResourceId.1=" + noENI + "&Tag.1.Key=k&Tag.1.Value=v", 400, "<Code>InvalidNetworkInterfaceID.NotFound</Code>"},
		{"Action=CreateTags&ResourceId.1=" + inst.PrimaryENI, 400, "<Code>MissingParameter</Code>"},
		{"Action=DeleteTags&ResourceId.1=" + noSubnet, 400, "<Code>InvalidSubnetID.NotFound</Code>"},
		{"Action=DisassociateTrunkInterface&AssociationId=" + noAssoc, 400, "<Code>InvalidAssociationID.NotFound</Code>"},
		{"Action=AssociateTrunkInterface&BranchInterfaceId=" + noENI + "&TrunkInterfaceId=" + inst.PrimaryENI + "&VlanId=5", 400, "<Code>InvalidNetworkInterfaceID.NotFound</Code>"},
		{"Action=CreateNetworkInterfacePermission&NetworkInterfaceId=" + noENI + "&AwsAccountId=123456789012&Permission=INSTANCE-ATTACH", 400, "<Code>InvalidNetworkInterfaceID.NotFound</Code>"},
		{"Action=DeleteSecurityGroup&GroupId=" + noGroup, 400, "<Code>InvalidGroup.NotFound</Code>"},
		{"Action=AuthorizeSecurityGroupIngress&GroupId=" + simtest.SecurityGroupID + "&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=80&IpPermissions.1.ToPort=80&IpPermissions.1.Groups.1.GroupId=" + noGroup, 400, "<Code>InvalidGroup.NotFound</Code>"},
		{"Action=CreateSecurityGroup&GroupName=x&GroupDescription=y&VpcId=vpc-0000000000000dead", 400, "<Code>InvalidVpcID.NotFound</Code>"},
		{"Action=CreateSecurityGroup&GroupName=x&GroupDescription=y", 400, "<Code>VPCIdNotSpecified</Code>"},
		{"Action=DeleteSecurityGroup", 400, "<Code>MissingParameter</Code>"},
		{"Action=AuthorizeSecurityGroupIngress&GroupId=" + simtest.SecurityGroupID, 400, "<Code>MissingParameter</Code><Message>The request must contain the parameter IpPermissions</Message>"},
		{"Action=RevokeSecurityGroupEgress&GroupId=" + noGroup + "&SecurityGroupRuleId.1=sgr-0000000000000dead", 400, "<Code>InvalidGroup.NotFound</Code>"},
		{"Action=DescribeNetworkInterfaces&NetworkInterfaceId.1=" + noENI, 400, "<Code>InvalidNetworkInterfaceID.NotFound</Code>"},
		{"Action=DescribeVpcs&MaxResults=2", 400, "<Code>InvalidParameterValue</Code>"},
		// a request that would succeed
		{"Action=DeleteNetworkInterface&NetworkInterfaceId=" + inst.PrimaryENI, 412, "<Code>DryRunOperation</Code>"},
		{"Action=CreateTags&ResourceId.1=" + inst.PrimaryENI + "&Tag.1.Key=k&Tag.1.Value=v", 412, "<Code>DryRunOperation</Code>"},
		{"Action=DescribeNetworkInterfaces&NetworkInterfaceId.1=" + inst.PrimaryENI, 412, "<Code>DryRunOperation</Code>"},
	}
	before := env.Sim.State()
	for _, c := range cases {
		form, err := url.ParseQuery(c.form + "&Version=2016-11-15&DryRun=true")
		if err != nil {
			t.Fatal(err)
		}
		status, body := postEC2(t, env.EC2URL, form)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s\nwant %d containing %q", c.form, status, body, c.status, c.want)
		}
		checkEC2Response(t, status, []byte(body))
	}
	if after := env.Sim.State(); !reflect.DeepEqual(before, after) {
		t.Errorf("a dry run changed the account")
	}
}

// Permission comes before the parameters: a denied caller hears
// UnauthorizedOperation for a dry run that names nothing that exists.
func TestDryRunDeniedBeforeResources(t *testing.T) {
	sc := simtest.Basic()
	sc.DenyActions = []string{"DeleteNetworkInterface"}
	env := simtest.Start(t, sc)
	status, body := postEC2(t, env.EC2URL, url.Values{"Action": {"DeleteNetworkInterface"}, "Version": {"2016-11-15"},
		"DryRun": {"true"}, "NetworkInterfaceId": {"eni-0000000000000dead"}})
	if status != http.StatusForbidden || !strings.Contains(body, "<Code>UnauthorizedOperation</Code>") {
		t.Errorf("denied dry run: %d %s, want 403 UnauthorizedOperation", status, body)
	}
}
