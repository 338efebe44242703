package dataplane

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

const secondInstance = "i-00000000000000002"

// nodeHTTP is an HTTP client whose connections start inside a node. Its
// calls are expected to work: a generous timeout for a loaded CI machine.
func nodeHTTP(path string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil {
				return nil, err
			}
			return DialIn(ctx, path, netip.Addr{}, ap)
		},
	}}
}

// mirroredVPC runs vpcsim with two m5.large instances (the second with a
// public IP) and a data plane that mirrors it, serving IMDS and EC2 inside
// the VPC namespace.
func mirroredVPC(t *testing.T, attachDelay time.Duration) (*vpcsim.Sim, *Dataplane, *Mirror) {
	t.Helper()
	testutil.Privileged(t)
	sc := simtest.Basic()
	sc.VPCs[0].Subnets[1].MapPublicIP = true
	sc.Instances = append(sc.Instances, vpcsim.InstanceSpec{ID: secondInstance, Type: "m5.large", Subnet: simtest.NodeSubnetBID, SecurityGroups: []string{simtest.SecurityGroupID}})
	sc.Faults.AttachDelay = vpcsim.Duration(attachDelay)
	sim, err := vpcsim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	d, err := New(Config{Services: []Service{
		{Name: "imds", Addr: IMDSAddr, Handler: sim.IMDSHandlerByRemoteAddr()},
		{Name: "ec2", Addr: EC2Addr, Handler: sim.EC2Handler()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	prefix := RunPrefix(d.RunID())
	m := d.Mirror(sim)
	t.Cleanup(func() {
		m.Stop()
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left, _ := ListNamespaces(prefix); len(left) > 0 {
			t.Errorf("namespaces left: %v", left)
		}
	})
	if err := m.Err(); err != nil {
		t.Fatalf("mirroring the initial state: %v", err)
	}
	return sim, d, m
}

func TestPrivilegedMirrorServesEachNodeItsOwnIMDS(t *testing.T) {
	sim, d, _ := mirroredVPC(t, 0)
	for _, id := range []string{simtest.InstanceID, secondInstance} {
		c := imds.New(imds.Options{Endpoint: "http://" + IMDSAddr.String(), HTTPClient: nodeHTTP(nodeNS(t, d, id))})
		out, err := c.GetMetadata(context.Background(), &imds.GetMetadataInput{Path: "instance-id"})
		if err != nil {
			t.Fatalf("%s: IMDS over eth0: %v", id, err)
		}
		body, _ := io.ReadAll(out.Content)
		if string(body) != id {
			t.Errorf("node %s: IMDS says %q", id, body)
		}
		inst, err := sim.Instance(id)
		if err != nil {
			t.Fatal(err)
		}
		eth0 := linkIn(t, nodeNS(t, d, id), "eth0")
		if eth0 == nil || eth0.Attrs().HardwareAddr.String() != inst.MAC {
			t.Errorf("node %s: eth0 %v, want MAC %s", id, eth0, inst.MAC)
		}
	}
}

func TestPrivilegedMirrorHotPlugsENIsAttachedThroughEC2(t *testing.T) {
	sim, d, m := mirroredVPC(t, 300*time.Millisecond)
	node := nodeNS(t, d, simtest.InstanceID)
	client := ec2.New(ec2.Options{
		Region: "us-west-2", BaseEndpoint: aws.String("http://" + EC2Addr.String()),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		HTTPClient:  nodeHTTP(node), Retryer: aws.NopRetryer{},
	})
	// five EC2 calls expected to work, each allowed nodeHTTP's 30 s
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	created, err := client.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), Groups: []string{simtest.SecurityGroupID}})
	if err != nil {
		t.Fatalf("CreateNetworkInterface from the node: %v", err)
	}
	eniID, mac := *created.NetworkInterface.NetworkInterfaceId, *created.NetworkInterface.MacAddress
	if _, err := client.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: &eniID, InstanceId: aws.String(simtest.InstanceID), DeviceIndex: aws.Int32(1)}); err != nil {
		t.Fatalf("AttachNetworkInterface: %v", err)
	}
	eth1 := waitLink(t, node, "eth1", true)
	if eth1.Attrs().HardwareAddr.String() != mac {
		t.Errorf("eth1 MAC %s, want the ENI's %s", eth1.Attrs().HardwareAddr, mac)
	}
	assigned, err := client.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &eniID, SecondaryPrivateIpAddressCount: aws.Int32(2)})
	if err != nil {
		t.Fatalf("AssignPrivateIpAddresses: %v", err)
	}
	// Events are applied before EC2 answers: the routes exist already.
	routed := map[netip.Prefix]bool{}
	for _, p := range d.RoutedAddresses(eniID) {
		routed[p] = true
	}
	for _, a := range assigned.AssignedPrivateIpAddresses {
		p := netip.PrefixFrom(netip.MustParseAddr(*a.PrivateIpAddress), 32)
		if !routed[p] {
			t.Errorf("assigned %s is not routed to %s (routed: %v)", p, eniID, d.RoutedAddresses(eniID))
		}
	}
	if _, err := client.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: firstAttachment(t, sim, eniID)}); err != nil {
		t.Fatalf("DetachNetworkInterface: %v", err)
	}
	waitLink(t, node, "eth1", false)
	if err := m.Err(); err != nil {
		t.Errorf("mirror errors: %v", err)
	}
}

func TestPrivilegedMirrorInternetOnlyForPublicInstances(t *testing.T) {
	sim, d, _ := mirroredVPC(t, 0)
	pub, err := sim.Instance(secondInstance)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.PublicIP.IsValid() || priv.PublicIP.IsValid() {
		t.Fatalf("scenario: want only %s public, got %v / %v", secondInstance, pub.PublicIP, priv.PublicIP)
	}
	if got, err := whoami(t, nodeNS(t, d, secondInstance), netip.Addr{}, DefaultInternetAddrs[0]); err != nil || got != pub.PublicIP {
		t.Errorf("public node -> internet: seen as %v, err %v; want its public IP %s", got, err, pub.PublicIP)
	}
	if got, err := probe(t, nodeNS(t, d, simtest.InstanceID), netip.Addr{}, DefaultInternetAddrs[0]); err == nil {
		t.Errorf("private node reached the internet as %s", got)
	}
}

func firstAttachment(t *testing.T, sim *vpcsim.Sim, eniID string) *string {
	t.Helper()
	for _, e := range sim.NetworkInterfaces() {
		if e.ID == eniID && e.Attachment != nil {
			return aws.String(e.Attachment.ID)
		}
	}
	t.Fatalf("%s has no attachment", eniID)
	return nil
}

// waitLink polls until the link exists (or is gone) in the namespace. The
// mirror applies the change at once; the generous bound is for a loaded
// CI machine, and a mirror that never applies it still fails.
func waitLink(t *testing.T, path, name string, present bool) netlink.Link {
	t.Helper()
	var l netlink.Link
	err := testutil.Eventually(context.Background(), 30*time.Second, func() error {
		if l = linkIn(t, path, name); (l != nil) != present {
			return fmt.Errorf("%s present=%v: still %v", name, present, l != nil)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}
