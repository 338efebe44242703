package vpcsim_test

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// FuzzEC2Handler: random request bodies never panic and always get a
// well-formed EC2 answer (an <ActionResponse> on 200, AWS error XML with a
// code otherwise), and never an internal error.
func FuzzEC2Handler(f *testing.F) {
	seeds := []string{
		"Action=DescribeNetworkInterfaces&Version=2016-11-15",
		"Action=DescribeNetworkInterfaces&Filter.1.Name=tag-key&Filter.1.Value.1=x&MaxResults=5",
		"Action=DescribeNetworkInterfaces&NextToken=%%%",
		"Action=CreateNetworkInterface&SubnetId=subnet-00000000000000001&SecondaryPrivateIpAddressCount=3&TagSpecification.1.ResourceType=network-interface&TagSpecification.1.Tag.1.Key=a&TagSpecification.1.Tag.1.Value=b",
		"Action=CreateNetworkInterface&SubnetId=subnet-00000000000000001&Ipv4PrefixCount=2&Ipv6PrefixCount=1",
		"Action=CreateNetworkInterface&SubnetId=subnet-00000000000000001&PrivateIpAddresses.1.PrivateIpAddress=10.0.0.9&PrivateIpAddresses.1.Primary=true",
		"Action=AttachNetworkInterface&NetworkInterfaceId=eni-00000000000000002&InstanceId=i-00000000000000001&DeviceIndex=1",
		"Action=AssignPrivateIpAddresses&NetworkInterfaceId=eni-00000000000000001&SecondaryPrivateIpAddressCount=-1",
		"Action=AssignPrivateIpAddresses&NetworkInterfaceId=eni-00000000000000001&PrivateIpAddress.1=10.0.0.77&PrivateIpAddress.0=x",
		"Action=UnassignPrivateIpAddresses&NetworkInterfaceId=eni-00000000000000001&Ipv4Prefix.1=10.0.0.0/28",
		"Action=AssignIpv6Addresses&NetworkInterfaceId=eni-00000000000000001&Ipv6AddressCount=99999999999",
		"Action=ModifyNetworkInterfaceAttribute&NetworkInterfaceId=eni-00000000000000001&Attachment.AttachmentId=eni-attach-00000000000000001&Attachment.DeleteOnTermination=maybe",
		"Action=DetachNetworkInterface&AttachmentId=eni-attach-00000000000000001",
		"Action=CreateTags&ResourceId.1=i-00000000000000001&Tag.1.Key=aws:x",
		"Action=DescribeInstanceTypes&InstanceType.1=m5.large&Filter.1.Name=bare-metal&Filter.1.Value.1=*",
		"Action=RunInstances&InstanceType=m5.large&SubnetId=subnet-00000000000000001&MinCount=1&MaxCount=2",
		"Action=TerminateInstances&InstanceId.1=i-00000000000000001",
		"Action=DescribeSubnets&Filter.1.Name=tag:Name&Filter.1.Value.1=n*-?",
		"Action=&Version=",
		"Action=DescribeVpcs&DryRun=true",
		"%zz",
		"",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sim, err := vpcsim.New(simtest.Basic())
		if err != nil {
			t.Fatal(err)
		}
		defer sim.Close()
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		sim.EC2Handler().ServeHTTP(rec, req)
		checkEC2Response(t, rec.Code, rec.Body.Bytes())
	})
}

func checkEC2Response(t *testing.T, status int, body []byte) {
	t.Helper()
	switch status {
	case 200:
		var root struct {
			XMLName   xml.Name
			RequestID string `xml:"requestId"`
		}
		if err := xml.Unmarshal(body, &root); err != nil {
			t.Fatalf("200 with malformed XML: %v\n%s", err, body)
		}
		if !strings.HasSuffix(root.XMLName.Local, "Response") || root.RequestID == "" {
			t.Fatalf("200 without <ActionResponse><requestId>: %s", body)
		}
	case 400, 403, 412, 503:
		var e struct {
			Errors []struct {
				Code    string `xml:"Code"`
				Message string `xml:"Message"`
			} `xml:"Errors>Error"`
			RequestID string `xml:"RequestID"`
		}
		if err := xml.Unmarshal(body, &e); err != nil {
			t.Fatalf("%d with malformed error XML: %v\n%s", status, err, body)
		}
		if len(e.Errors) != 1 || e.Errors[0].Code == "" || e.RequestID == "" {
			t.Fatalf("%d without error code / request id: %s", status, body)
		}
	default:
		t.Fatalf("unexpected status %d: %s", status, body)
	}
}
