package vpcsim_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func getMeta(t *testing.T, c *imds.Client, path string) (string, error) {
	t.Helper()
	out, err := c.GetMetadata(ctx(t), &imds.GetMetadataInput{Path: path})
	if err != nil {
		return "", err
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	return string(b), err
}

func TestIMDSPathsSDK(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newIMDS(env.IMDSURL(simtest.InstanceID))
	inst, err := env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	mac := inst.MAC
	want := map[string]string{
		"instance-id":                 simtest.InstanceID,
		"instance-type":               "m5.large",
		"local-ipv4":                  inst.PrimaryIP.String(),
		"mac":                         mac,
		"placement/availability-zone": "us-west-2a",
		"placement/region":            "us-west-2",
		"network/interfaces/macs/":    mac + "/",
		"network/interfaces/macs/" + mac + "/interface-id":            inst.PrimaryENI,
		"network/interfaces/macs/" + mac + "/device-number":           "0",
		"network/interfaces/macs/" + mac + "/network-card":            "0",
		"network/interfaces/macs/" + mac + "/subnet-id":               simtest.NodeSubnetID,
		"network/interfaces/macs/" + mac + "/vpc-id":                  simtest.VPCID,
		"network/interfaces/macs/" + mac + "/security-group-ids":      simtest.SecurityGroupID,
		"network/interfaces/macs/" + mac + "/local-ipv4s":             inst.PrimaryIP.String(),
		"network/interfaces/macs/" + mac + "/subnet-ipv4-cidr-block":  "10.0.0.0/20",
		"network/interfaces/macs/" + mac + "/vpc-ipv4-cidr-blocks":    "10.0.0.0/16\n100.64.0.0/16",
		"network/interfaces/macs/" + mac + "/vpc-ipv6-cidr-blocks":    "2600:1f14:abc:de00::/56",
		"network/interfaces/macs/" + mac + "/subnet-ipv6-cidr-blocks": "2600:1f14:abc:de00::/64",
		"network/interfaces/macs/" + mac + "/owner-id":                "123456789012",
	}
	for p, v := range want {
		got, err := getMeta(t, c, p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got != v {
			t.Errorf("%s = %q, want %q", p, got, v)
		}
	}
	fields, err := getMeta(t, c, "network/interfaces/macs/"+mac+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"device-number", "interface-id", "local-ipv4s", "network-card", "security-group-ids", "subnet-id", "vpc-id", "vpc-ipv4-cidr-blocks"} {
		if !strings.Contains("\n"+fields+"\n", "\n"+f+"\n") {
			t.Errorf("mac listing lacks %s:\n%s", f, fields)
		}
	}
	// optional lists are 404 when empty
	if _, err := getMeta(t, c, "network/interfaces/macs/"+mac+"/ipv4-prefix"); err == nil {
		t.Error("ipv4-prefix without prefixes: want 404")
	}
	if _, err := getMeta(t, c, "no-such-path"); err == nil {
		t.Error("unknown path: want 404")
	}
	doc, err := c.GetInstanceIdentityDocument(ctx(t), &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		t.Fatal(err)
	}
	if doc.Region != "us-west-2" || doc.InstanceID != simtest.InstanceID || doc.AccountID != "123456789012" || doc.PrivateIP != inst.PrimaryIP.String() {
		t.Fatalf("identity document: %+v", doc.InstanceIdentityDocument)
	}
	region, err := c.GetRegion(ctx(t), &imds.GetRegionInput{})
	if err != nil || region.Region != "us-west-2" {
		t.Fatalf("GetRegion: %v %v", region, err)
	}
}

func TestIMDSv2Required(t *testing.T) {
	sc := simtest.Basic()
	sc.Instances[0].IMDSv1Disabled = true
	env := simtest.Start(t, sc)
	base := env.IMDSURL(simtest.InstanceID)

	resp, err := http.Get(base + "/latest/meta-data/instance-id")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("IMDSv1 GET with v1 disabled: status %d, want 401", resp.StatusCode)
	}
	for _, ttl := range []string{"", "0", "21601", "x"} {
		req, _ := http.NewRequest(http.MethodPut, base+"/latest/api/token", nil)
		if ttl != "" {
			req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", ttl)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("token TTL %q: status %d, want 400", ttl, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/latest/meta-data/instance-id", nil)
	req.Header.Set("X-aws-ec2-metadata-token", "bogus")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bogus token: status %d, want 401", resp.StatusCode)
	}
	// the SDK client fetches a token and succeeds
	got, err := getMeta(t, newIMDS(base), "instance-id")
	if err != nil || got != simtest.InstanceID {
		t.Fatalf("SDK with token: %q %v", got, err)
	}
}

func TestIMDSv1AllowedByDefault(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	resp, err := http.Get(env.IMDSURL(simtest.InstanceID) + "/latest/meta-data/instance-type")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "m5.large" {
		t.Fatalf("IMDSv1 GET: %d %q", resp.StatusCode, b)
	}
}

// fakeClock is a settable clock for lag, delay and refill tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestIMDSLag(t *testing.T) {
	clk := newFakeClock()
	sc := simtest.Basic()
	sc.Faults.IMDSLag = vpcsim.Duration(5 * time.Second)
	env := simtest.Start(t, sc, vpcsim.WithClock(clk.Now))
	c := newEC2(env.EC2URL)
	md := newIMDS(env.IMDSURL(simtest.InstanceID))
	inst, _ := env.Sim.Instance(simtest.InstanceID)
	ipsPath := "network/interfaces/macs/" + inst.MAC + "/local-ipv4s"

	clk.Advance(time.Minute)
	out := must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(inst.PrimaryENI), SecondaryPrivateIpAddressCount: aws.Int32(2)}))
	newIP := aws.ToString(out.AssignedPrivateIpAddresses[0].PrivateIpAddress)

	clk.Advance(4 * time.Second)
	got, err := getMeta(t, md, ipsPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, newIP) {
		t.Fatalf("IMDS shows %s before the lag elapsed: %q", newIP, got)
	}
	// EC2 already knows
	if v, _ := env.Sim.Instance(simtest.InstanceID); len(v.ENIs[0].SecondaryIPs) != 2 {
		t.Fatalf("EC2 view: %+v", v.ENIs[0])
	}
	clk.Advance(2 * time.Second)
	got, err = getMeta(t, md, ipsPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, newIP) {
		t.Fatalf("IMDS still lacks %s after the lag: %q", newIP, got)
	}

	// a removed address lingers for the lag too
	clk.Advance(time.Minute)
	must[*ec2.UnassignPrivateIpAddressesOutput](t)(c.UnassignPrivateIpAddresses(ctx(t), &ec2.UnassignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(inst.PrimaryENI), PrivateIpAddresses: []string{newIP}}))
	clk.Advance(time.Second)
	if got, _ := getMeta(t, md, ipsPath); !strings.Contains(got, newIP) {
		t.Fatalf("removed address vanished from IMDS before the lag: %q", got)
	}
	clk.Advance(5 * time.Second)
	if got, _ := getMeta(t, md, ipsPath); strings.Contains(got, newIP) {
		t.Fatalf("removed address still in IMDS after the lag: %q", got)
	}
}

func TestIMDSFollowsSecurityGroupChange(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	inst, _ := env.Sim.Instance(simtest.InstanceID)
	must[*ec2.ModifyNetworkInterfaceAttributeOutput](t)(c.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(inst.PrimaryENI), Groups: []string{simtest.SecurityGroup2ID, simtest.SecurityGroupID}}))
	got, err := getMeta(t, newIMDS(env.IMDSURL(simtest.InstanceID)), "network/interfaces/macs/"+inst.MAC+"/security-group-ids")
	if err != nil || got != simtest.SecurityGroup2ID+"\n"+simtest.SecurityGroupID {
		t.Fatalf("security-group-ids after modify: %q %v", got, err)
	}
}

func TestIMDSTokenExpiresAndIPv6Node(t *testing.T) {
	clk := newFakeClock()
	sc := simtest.Basic()
	sc.Instances[0].IMDSv1Disabled = true
	sc.Instances[0].IPv6AddressCount = 1
	env := simtest.Start(t, sc, vpcsim.WithClock(clk.Now))
	base := env.IMDSURL(simtest.InstanceID)
	req, _ := http.NewRequest(http.MethodPut, base+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "60" {
		t.Fatalf("TTL header: %v", resp.Header)
	}
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/latest/meta-data/"+path, nil)
		req.Header.Set("X-aws-ec2-metadata-token", string(tok))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	v, _ := env.Sim.Instance(simtest.InstanceID)
	code, ipv6 := get("ipv6")
	if code != 200 || ipv6 != v.ENIs[0].IPv6[0].String() || !strings.HasPrefix(ipv6, "2600:1f14:abc:de00:") {
		t.Fatalf("ipv6: %d %q (ENI %v)", code, ipv6, v.ENIs[0].IPv6)
	}
	if code, got := get("network/interfaces/macs/" + v.MAC + "/ipv6s"); code != 200 || got != ipv6 {
		t.Fatalf("ipv6s: %d %q", code, got)
	}
	clk.Advance(61 * time.Second)
	if code, _ := get("instance-id"); code != http.StatusUnauthorized {
		t.Fatalf("expired token: %d, want 401", code)
	}
}

func TestSourceDestCheckAttribute(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	inst, _ := env.Sim.Instance(simtest.InstanceID)
	if !inst.ENIs[0].SourceDestCheck {
		t.Fatal("source/dest check must default to on")
	}
	must[*ec2.ModifyNetworkInterfaceAttributeOutput](t)(c.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(inst.PrimaryENI), SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)}}))
	d := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{inst.PrimaryENI}}))
	if aws.ToBool(d.NetworkInterfaces[0].SourceDestCheck) {
		t.Fatal("source/dest check still on after disabling")
	}
}
