package vpcsim_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// The data plane learns every security change and every branch
// association from events, the replay included.
func TestSecurityAndTrunkEvents(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	trunk := newTrunk(t, c)
	branch := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), Groups: []string{simtest.SecurityGroup2ID}})
	a := must[*ec2.AssociateTrunkInterfaceOutput](t)(associate(c, t, branch, trunk, 42))

	var log eventLog
	cancel := env.Sim.Subscribe(log.add)
	defer cancel()
	lastSG := func() vpcsim.SecurityGroupsChanged {
		log.mu.Lock()
		defer log.mu.Unlock()
		for i := len(log.evs) - 1; i >= 0; i-- {
			if ev, ok := log.evs[i].(vpcsim.SecurityGroupsChanged); ok {
				return ev
			}
		}
		t.Fatal("no SecurityGroupsChanged event")
		return vpcsim.SecurityGroupsChanged{}
	}
	log.mu.Lock()
	var replayed *vpcsim.BranchAssociated
	for _, e := range log.evs {
		if ba, ok := e.(vpcsim.BranchAssociated); ok {
			replayed = &ba
		}
	}
	log.mu.Unlock()
	if replayed == nil || replayed.BranchENIID != branch || replayed.TrunkENIID != trunk || replayed.VLAN != 42 || replayed.MAC == "" || !replayed.PrimaryIP.IsValid() {
		t.Fatalf("replayed association: %+v", replayed)
	}
	sg := lastSG()
	i := slices.IndexFunc(sg.ENIs, func(e vpcsim.ENISecurity) bool { return e.ENIID == branch })
	if i < 0 || !slices.Equal(sg.ENIs[i].Groups, []string{simtest.SecurityGroup2ID}) || len(sg.ENIs[i].Addresses) == 0 {
		t.Fatalf("branch in the replayed security snapshot: %+v", sg.ENIs)
	}

	must[*ec2.AuthorizeSecurityGroupIngressOutput](t)(c.AuthorizeSecurityGroupIngress(ctx(t), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(simtest.SecurityGroup2ID), IpPermissions: []types.IpPermission{tcp(5432, "10.0.0.0/20")}}))
	sg = lastSG()
	g := slices.IndexFunc(sg.Groups, func(g vpcsim.SecurityGroupView) bool { return g.ID == simtest.SecurityGroup2ID })
	if g < 0 || !slices.ContainsFunc(sg.Groups[g].Rules, func(r vpcsim.SecurityGroupRuleView) bool {
		return !r.Egress && r.Protocol == "tcp" && r.FromPort == 5432 && r.CIDR == netip.MustParsePrefix("10.0.0.0/20")
	}) {
		t.Fatalf("authorized rule missing from the snapshot: %+v", sg.Groups)
	}

	must[*ec2.DisassociateTrunkInterfaceOutput](t)(c.DisassociateTrunkInterface(ctx(t), &ec2.DisassociateTrunkInterfaceInput{AssociationId: a.InterfaceAssociation.AssociationId}))
	log.mu.Lock()
	defer log.mu.Unlock()
	if !slices.ContainsFunc(log.evs, func(e vpcsim.Event) bool {
		d, ok := e.(vpcsim.BranchDisassociated)
		return ok && d.BranchENIID == branch && d.VLAN == 42
	}) {
		t.Fatal("no BranchDisassociated event")
	}
}
