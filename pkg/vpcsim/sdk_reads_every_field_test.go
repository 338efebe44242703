package vpcsim_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// teeClient keeps the body of the last answer the SDK received.
type teeClient struct {
	inner ec2.HTTPClient
	last  []byte
}

func (c *teeClient) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.inner.Do(r)
	if err != nil {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.last = b
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// xmlLeaves lists every element with text in an answer, as path=value,
// except the request id, which the SDK keeps in its metadata.
func xmlLeaves(t *testing.T, body []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	d := xml.NewDecoder(bytes.NewReader(body))
	var path []string
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("answer is not XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			path = append(path, tok.Name.Local)
			text.Reset()
		case xml.CharData:
			text.Write(tok)
		case xml.EndElement:
			v := strings.TrimSpace(text.String())
			if v != "" && tok.Name.Local != "requestId" {
				out[v] = append(out[v], strings.Join(path, "/"))
			}
			text.Reset()
			path = path[:len(path)-1]
		}
	}
}

// sdkValues counts every value the SDK read into out, written as EC2 writes it.
func sdkValues(out any) map[string]int {
	seen := map[string]int{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			if tm, ok := v.Interface().(time.Time); ok {
				seen[tm.UTC().Format("2006-01-02T15:04:05.000Z")]++
				return
			}
			for i := 0; i < v.NumField(); i++ {
				if v.Type().Field(i).IsExported() && v.Type().Field(i).Name != "ResultMetadata" {
					walk(v.Field(i))
				}
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		case reflect.String, reflect.Bool, reflect.Int32, reflect.Int64, reflect.Int:
			seen[fmt.Sprint(v.Interface())]++
		}
	}
	walk(reflect.ValueOf(out))
	return seen
}

// TestSDKReadsEveryFieldSent: every value vpcsim writes into a describe
// answer reaches the SDK's output, so no element name or nesting is one the
// SDK's deserializer skips (it ignores elements it does not know).
func TestSDKReadsEveryFieldSent(t *testing.T) {
	sc := simtest.Basic()
	env := simtest.Start(t, sc)
	tee := &teeClient{}
	c := ec2.New(newEC2(env.EC2URL).Options(), func(o *ec2.Options) {
		tee.inner = o.HTTPClient
		o.HTTPClient = tee
	})
	cx := ctx(t)
	// an ENI with every kind of address, tags and an attachment
	eni := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(cx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(simtest.NodeSubnetID), Description: aws.String("aws-K8S-i-00000000000000001"),
		Ipv6AddressCount: aws.Int32(1), Ipv6PrefixCount: aws.Int32(1), Ipv4PrefixCount: aws.Int32(1),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface,
			Tags: []types.Tag{{Key: aws.String("cluster.k8s.amazonaws.com/name"), Value: aws.String("sim")}}}},
	}))
	id := aws.ToString(eni.NetworkInterface.NetworkInterfaceId)
	if _, err := attach(c, t, id, 1); err != nil {
		t.Fatal(err)
	}
	primary := must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(cx, &ec2.DescribeInstancesInput{InstanceIds: []string{simtest.InstanceID}})).Reservations[0].Instances[0].NetworkInterfaces
	for _, e := range primary {
		if aws.ToInt32(e.Attachment.DeviceIndex) == 0 {
			_ = must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: e.NetworkInterfaceId, SecondaryPrivateIpAddressCount: aws.Int32(2)}))
		}
	}

	trunk := newTrunk(t, c)
	branch := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	var launched string
	calls := []struct {
		name string
		call func() (any, error)
	}{
		{"CreateNetworkInterface", func() (any, error) {
			return c.CreateNetworkInterface(cx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), Ipv4PrefixCount: aws.Int32(1), Ipv6AddressCount: aws.Int32(1)})
		}},
		{"AssignPrivateIpAddresses", func() (any, error) {
			return c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(1)})
		}},
		{"AssociateTrunkInterface", func() (any, error) {
			return c.AssociateTrunkInterface(cx, &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: aws.String(branch), TrunkInterfaceId: aws.String(trunk), VlanId: aws.Int32(3), ClientToken: aws.String("tok-assoc")})
		}},
		{"DescribeTrunkInterfaceAssociations", func() (any, error) {
			return c.DescribeTrunkInterfaceAssociations(cx, &ec2.DescribeTrunkInterfaceAssociationsInput{})
		}},
		{"DescribeNetworkInterfaces", func() (any, error) {
			return c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{})
		}},
		{"DescribeSubnets", func() (any, error) { return c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{}) }},
		{"DescribeVpcs", func() (any, error) { return c.DescribeVpcs(cx, &ec2.DescribeVpcsInput{}) }},
		{"DescribeSecurityGroups", func() (any, error) { return c.DescribeSecurityGroups(cx, &ec2.DescribeSecurityGroupsInput{}) }},
		{"DescribeSecurityGroupRules", func() (any, error) {
			return c.DescribeSecurityGroupRules(cx, &ec2.DescribeSecurityGroupRulesInput{})
		}},
		{"DescribeAvailabilityZones", func() (any, error) {
			return c.DescribeAvailabilityZones(cx, &ec2.DescribeAvailabilityZonesInput{})
		}},
		{"DescribeTags", func() (any, error) { return c.DescribeTags(cx, &ec2.DescribeTagsInput{}) }},
		{"DescribeInstanceTypes", func() (any, error) {
			return c.DescribeInstanceTypes(cx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m5.large", "p4d.24xlarge", "t2.micro"}})
		}},
		{"RunInstances", func() (any, error) {
			out, err := c.RunInstances(cx, &ec2.RunInstancesInput{InstanceType: "m5.large", SubnetId: aws.String(simtest.NodeSubnetID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), ClientToken: aws.String("tok-fields"),
				TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("fields")}}}}})
			if err == nil {
				launched = aws.ToString(out.Instances[0].InstanceId)
			}
			return out, err
		}},
		{"DescribeInstances", func() (any, error) { return c.DescribeInstances(cx, &ec2.DescribeInstancesInput{}) }},
		{"ModifyInstanceMetadataOptions", func() (any, error) {
			return c.ModifyInstanceMetadataOptions(cx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(launched), HttpPutResponseHopLimit: aws.Int32(2)})
		}},
		{"TerminateInstances", func() (any, error) {
			return c.TerminateInstances(cx, &ec2.TerminateInstancesInput{InstanceIds: []string{launched}})
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			got := sdkValues(out)
			for v, paths := range xmlLeaves(t, tee.last) {
				if got[v] < len(paths) {
					t.Errorf("value %q sent %d times (%s), the SDK read it %d times", v, len(paths), strings.Join(paths, ", "), got[v])
				}
			}
		})
	}
}
