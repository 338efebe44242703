package dataplane

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// adminDrops reads GET /sgdrops from the simulator's admin API.
func adminDrops(t *testing.T, sim *vpcsim.Sim) []vpcsim.SGDrop {
	t.Helper()
	rec := httptest.NewRecorder()
	sim.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/sgdrops", nil))
	var out []vpcsim.SGDrop
	if rec.Code != 200 {
		t.Fatalf("GET /sgdrops: %d %s", rec.Code, rec.Body)
	}
	must(t, json.Unmarshal(rec.Body.Bytes(), &out))
	return out
}

// Security groups changed through the unmodified SDK filter the mirrored
// VPC at once; a branch associated with a node's trunk gets a stand-in link
// carrying its own group.
func TestPrivilegedMirrorEnforcesEC2SecurityGroupsAndBranches(t *testing.T) {
	sim, d, m := mirroredVPC(t, 0)
	nodeA, nodeB := nodeNS(t, d, simtest.InstanceID), nodeNS(t, d, secondInstance)
	client := ec2.New(ec2.Options{
		Region: "us-west-2", BaseEndpoint: aws.String("http://" + EC2Addr.String()),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		HTTPClient:  nodeHTTP(nodeA), Retryer: aws.NopRetryer{},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := sim.Instance(secondInstance)
	must(t, err)
	serveWhoami(t, nodeB, b.PrimaryIP)
	// the scenario's default group admits the VPC: today's behaviour
	if _, err := whoami(t, nodeA, netip.Addr{}, b.PrimaryIP); err != nil {
		t.Fatalf("node A -> node B under default groups: %v", err)
	}

	// node B becomes a "database" that admits only the pods group
	db, err := client.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("db"), Description: aws.String("db"), VpcId: aws.String(simtest.VPCID)})
	must(t, err)
	perm := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(WhoamiPort), ToPort: aws.Int32(WhoamiPort),
		UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(simtest.SecurityGroup2ID)}}}
	_, err = client.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: db.GroupId, IpPermissions: []types.IpPermission{perm}})
	must(t, err)
	_, err = client.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(b.PrimaryENI), Groups: []string{aws.ToString(db.GroupId)}})
	must(t, err)
	if _, err := probe(t, nodeA, netip.Addr{}, b.PrimaryIP); err == nil {
		t.Fatal("node A (default group) still reaches the db node")
	}
	i := slices.IndexFunc(adminDrops(t, sim), func(x vpcsim.SGDrop) bool { return x.ENIID == b.PrimaryENI && x.Direction == "ingress" })
	if drops := adminDrops(t, sim); i < 0 || drops[i].Packets == 0 || !slices.Equal(drops[i].Groups, []string{aws.ToString(db.GroupId)}) {
		t.Fatalf("/sgdrops does not show the refusal on %s: %+v", b.PrimaryENI, drops)
	}

	// a branch in the pods group, on a trunk of node A
	trunk, err := client.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), InterfaceType: types.NetworkInterfaceCreationTypeTrunk})
	must(t, err)
	_, err = client.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: trunk.NetworkInterface.NetworkInterfaceId, InstanceId: aws.String(simtest.InstanceID), DeviceIndex: aws.Int32(2)})
	must(t, err)
	br, err := client.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), Groups: []string{simtest.SecurityGroup2ID}})
	must(t, err)
	assoc, err := client.AssociateTrunkInterface(ctx, &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: br.NetworkInterface.NetworkInterfaceId, TrunkInterfaceId: trunk.NetworkInterface.NetworkInterfaceId, VlanId: aws.Int32(5)})
	must(t, err)
	must(t, m.Err())
	l := linkIn(t, nodeA, StandinName(5))
	if l == nil || l.Attrs().Alias != StandinAlias || l.Attrs().HardwareAddr.String() != aws.ToString(br.NetworkInterface.MacAddress) {
		t.Fatalf("stand-in for VLAN 5: %+v", l)
	}
	branchIP := netip.MustParseAddr(aws.ToString(br.NetworkInterface.PrivateIpAddress))
	configureLink(t, nodeA, StandinName(5), netip.PrefixFrom(branchIP, 20))
	if got, err := whoami(t, nodeA, branchIP, b.PrimaryIP); err != nil || got != branchIP {
		t.Fatalf("branch (pods group) -> db: saw %v, err %v", got, err)
	}
	_, err = client.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: db.GroupId, IpPermissions: []types.IpPermission{perm}})
	must(t, err)
	if _, err := probe(t, nodeA, branchIP, b.PrimaryIP); err == nil {
		t.Fatal("branch still reaches the db after the rule was revoked")
	}
	_, err = client.DisassociateTrunkInterface(ctx, &ec2.DisassociateTrunkInterfaceInput{AssociationId: assoc.InterfaceAssociation.AssociationId})
	must(t, err)
	if linkIn(t, nodeA, StandinName(5)) != nil {
		t.Fatal("stand-in left after DisassociateTrunkInterface")
	}
	must(t, m.Err())
}
