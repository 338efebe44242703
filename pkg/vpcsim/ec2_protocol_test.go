package vpcsim_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func TestQueryProtocolEdges(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	cases := []struct {
		method, query, body string
		status              int
		want                string
	}{
		{"GET", "?Action=DescribeVpcs&Version=2016-11-15", "", 200, "<DescribeVpcsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>"},
		{"POST", "", "Version=2016-11-15", 400, "<Code>MissingAction</Code>"},
		{"POST", "", "Action=DescribeNetworkInterfaces&NetworkInterfaceId.1=bogus", 400, "<Code>InvalidNetworkInterfaceID.Malformed</Code>"},
		{"POST", "", "Action=AssignPrivateIpAddresses&NetworkInterfaceId=eni-00000000000000001&SecondaryPrivateIpAddressCount=two", 400, "<Code>InvalidParameterValue</Code>"},
		{"POST", "", "Action=DescribeNetworkInterfaces&MaxResults=4", 400, "maxResults"},
		{"POST", "", "Action=DescribeNetworkInterfaces&MaxResults=5&NextToken=garbage", 400, "<Code>InvalidPaginationToken</Code>"},
		{"POST", "", "Action=DescribeVpcs&DryRun=true", 412, "<Code>DryRunOperation</Code>"},
		{"DELETE", "", "", 400, "<Code>InvalidHttpRequest</Code>"},
		{"POST", "", "Action=DescribeSubnets&Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-00000000000000001&Filter.x.Name=y", 400, "<Code>InvalidParameterValue</Code>"},
		{"POST", "", "Action=CreateNetworkInterface&SubnetId=" + simtest.NodeSubnetID + "&Description=%3Cscript%3E", 200, "<description>&lt;script&gt;</description>"},
		// a number or boolean sent empty is invalid, named, not taken as 0 or absent
		{"POST", "", "Action=AttachNetworkInterface&NetworkInterfaceId=eni-00000000000000001&InstanceId=i-00000000000000001&DeviceIndex=", 400, "Value () for parameter DeviceIndex is invalid."},
		{"POST", "", "Action=DescribeNetworkInterfaces&MaxResults=", 400, "Value () for parameter MaxResults is invalid."},
		{"POST", "", "Action=DetachNetworkInterface&AttachmentId=eni-attach-00000000000000001&Force=", 400, "Value () for parameter Force is invalid."},
		{"POST", "", "Action=DescribeVpcs&DryRun=", 400, "Value () for parameter DryRun is invalid."},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, env.EC2URL+"/"+c.query, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("%s %s %s: %d %s\nwant %d containing %q", c.method, c.query, c.body, resp.StatusCode, b, c.status, c.want)
		}
		checkEC2Response(t, resp.StatusCode, b)
	}
}
