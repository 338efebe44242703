package vpcsim_test

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// misnamed is, per served action, a parameter a client could plausibly send
// by mistake (a plural, a missing ".Value", a field of another action).
var misnamed = map[string]string{
	"DescribeInstanceTypes":              "InstanceTypes.1",
	"DescribeInstances":                  "InstanceIds.1",
	"DescribeNetworkInterfaces":          "NetworkInterfaceIds.1",
	"DescribeSubnets":                    "SubnetIds.1",
	"DescribeVpcs":                       "VpcIds.1",
	"DescribeSecurityGroups":             "GroupIds.1",
	"DescribeAvailabilityZones":          "ZoneNames.1",
	"DescribeTags":                       "Filters.1.Name",
	"CreateNetworkInterface":             "SecurityGroupIds.1",
	"AttachNetworkInterface":             "DeviceIdx",
	"DetachNetworkInterface":             "NetworkInterfaceId",
	"DeleteNetworkInterface":             "NetworkInterfaceIds.1",
	"ModifyNetworkInterfaceAttribute":    "SourceDestCheck",
	"AssignPrivateIpAddresses":           "DryRun",
	"UnassignPrivateIpAddresses":         "DryRun",
	"AssignIpv6Addresses":                "DryRun",
	"UnassignIpv6Addresses":              "DryRun",
	"CreateTags":                         "Tags.1.Key",
	"DeleteTags":                         "ResourceIds.1",
	"RunInstances":                       "SecurityGroupIds.1",
	"ModifyInstanceMetadataOptions":      "MetadataOptions.HttpTokens",
	"TerminateInstances":                 "InstanceId",
	"AssociateTrunkInterface":            "VlanID",
	"DisassociateTrunkInterface":         "AssociationId.1",
	"DescribeTrunkInterfaceAssociations": "AssociationIds.1",
	"CreateNetworkInterfacePermission":   "AccountId",
	"CreateSecurityGroup":                "Description",
	"DeleteSecurityGroup":                "GroupIds.1",
	"AuthorizeSecurityGroupIngress":      "IpPermissions.1.IpRanges.1.CidrIpv6",
	"AuthorizeSecurityGroupEgress":       "GroupName",
	"RevokeSecurityGroupIngress":         "IpPermission.1.IpProtocol",
	"RevokeSecurityGroupEgress":          "GroupName",
	"DescribeSecurityGroupRules":         "SecurityGroupRuleIds.1",
}

func postEC2(t *testing.T, ec2URL string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.Post(ec2URL+"/", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// EC2 answers a parameter the action does not define with UnknownParameter
// naming it; vpcsim used to ignore it, hiding misnamed parameters in clients.
func TestUnknownParameterOnEveryAction(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	for _, action := range vpcsim.ServedActions() {
		bad, ok := misnamed[action]
		if !ok {
			t.Errorf("%s: no misnamed parameter in this test", action)
			continue
		}
		form := url.Values{"Action": {action}, "Version": {"2016-11-15"}, bad: {"true"}}
		status, body := postEC2(t, env.EC2URL, form)
		want := "<Code>UnknownParameter</Code><Message>The parameter " + bad + " is not recognized</Message>"
		if status != http.StatusBadRequest || !strings.Contains(body, want) {
			t.Errorf("%s with %s: %d %s\nwant 400 containing %q", action, bad, status, body, want)
		}
		checkEC2Response(t, status, []byte(body))
	}
}

// A refused request changes nothing: the ENI keeps its addresses.
func TestUnknownParameterChangesNothing(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	eni := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(simtest.NodeSubnetID),
	})).NetworkInterface
	status, body := postEC2(t, env.EC2URL, url.Values{
		"Action": {"AssignPrivateIpAddresses"}, "Version": {"2016-11-15"},
		"NetworkInterfaceId": {*eni.NetworkInterfaceId}, "SecondaryPrivateIpAddressCount": {"2"},
		"DryRun": {"false"},
	})
	if status != http.StatusBadRequest || !strings.Contains(body, "<Code>UnknownParameter</Code>") {
		t.Fatalf("assign with DryRun: %d %s, want UnknownParameter", status, body)
	}
	out := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{
		NetworkInterfaceIds: []string{*eni.NetworkInterfaceId},
	}))
	if n := len(out.NetworkInterfaces[0].PrivateIpAddresses); n != 1 {
		t.Fatalf("ENI holds %d addresses after a refused assign, want 1", n)
	}
}

// Every field the SDK can send, on every served action, is a parameter
// vpcsim recognises: each input is filled by reflection, so a field the
// table misses would come back UnknownParameter. Other errors are fine (the
// values are nonsense); the request must reach vpcsim.
func TestSDKEveryFieldIsKnown(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := reflect.ValueOf(newEC2(env.EC2URL))
	for _, action := range vpcsim.ServedActions() {
		m := c.MethodByName(action)
		if !m.IsValid() {
			t.Errorf("%s: the SDK client has no such method", action)
			continue
		}
		in := reflect.New(m.Type().In(1).Elem())
		fill(in.Elem(), 0)
		res := m.Call([]reflect.Value{reflect.ValueOf(ctx(t)), in})
		err, _ := res[1].Interface().(error)
		if err == nil {
			continue
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			t.Errorf("%s: the request did not reach vpcsim: %v", action, err)
			continue
		}
		if ae.ErrorCode() == "UnknownParameter" {
			t.Errorf("%s: every SDK field set: %s", action, ae.ErrorMessage())
		}
	}
}

// fill sets every settable field of v to a non-zero value, lists to one
// member.
func fill(v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type() == reflect.TypeOf(&time.Time{}) {
			v.Set(reflect.ValueOf(aws.Time(time.Now())))
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Now()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), depth+1)
		v.Set(s)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Float64, reflect.Float32:
		v.SetFloat(1)
	}
}
