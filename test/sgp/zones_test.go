package sgp

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/resourcecontroller"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubefwd"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// zonePodSubnets are testdata/sgp-two-zones.yaml's 100.64 pod subnets, one
// per zone: the ENIConfig named after the zone points at it.
var zonePodSubnets = map[string]struct {
	id   string
	cidr netip.Prefix
}{
	"us-west-2a": {"subnet-00000000000000004", netip.MustParsePrefix("100.64.0.0/19")},
	"us-west-2b": {"subnet-00000000000000005", netip.MustParsePrefix("100.64.32.0/19")},
}

// The seed walkthrough, custom networking + security groups for pods on two
// nodes labelled by zone (topology.kubernetes.io/zone, which
// ENI_CONFIG_LABEL_DEF names), one ENIConfig per zone with a 100.64 pod
// subnet, and a policy for role=db-client. On both nodes the db-client pod
// is on a branch ENI in its zone's 100.64 subnet with the policy's group
// and reaches the database; the ordinary pod is on a shared pod ENI in the
// same subnet with the ENIConfig's group, is refused by the database (and
// counted), and reaches the internet SNATed to its node's primary address
// (which the internet sees through the gateway's 1:1 NAT as the node's
// public address: a pod address would not be translated at all).
func TestPrivilegedSGPTwoZonesCustomNetworking(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	c := newCluster(t, ctx, "sgp-two-zones.yaml")
	nodes := c.v.Nodes()
	if len(nodes) != 2 {
		t.Fatalf("scenario has %d nodes, want 2", len(nodes))
	}
	zones := map[string]string{} // node name → zone
	for _, n := range nodes {
		az := c.register(ctx, n)
		zones[n.Name] = az
		sub, ok := zonePodSubnets[az]
		if !ok {
			t.Fatalf("node %s in zone %s: no pod subnet for it", n.Name, az)
		}
		ec := &eniconfig.ENIConfig{ObjectMeta: metav1.ObjectMeta{Name: az}, Spec: eniconfig.Spec{Subnet: sub.id, SecurityGroups: []string{podSG}}}
		if err := c.admin.Create(ctx, ec); err != nil {
			t.Fatalf("create ENIConfig %s: %v", az, err)
		}
	}
	for _, n := range nodes {
		env := c.agentEnv(n, "VPC_CNI_TEST_FAST_INTERVALS=true", "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true", "ENI_CONFIG_LABEL_DEF="+zoneLabel)
		if err := c.v.StartAgent(ctx, n, env); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := c.v.WaitReady(ctx, n, nil); err != nil {
			t.Fatalf("%v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 20))
		}
		c.waitCustomNet(ctx, n, zones[n.Name])
	}
	c.addPolicy(ctx, "db-client", map[string]string{"role": "db-client"}, dbClientSG)
	for _, n := range nodes {
		c.waitTrunk(ctx, n)
	}
	type pair struct{ client, plain *localvpc.Pod }
	pods := map[string]pair{}
	branches := map[string]resourcecontroller.BranchENI{}
	for _, n := range nodes {
		c.createPod(ctx, "db-client-"+n.Name, n, map[string]string{"role": "db-client"})
		c.createPod(ctx, "web-"+n.Name, n, map[string]string{"role": "web"})
	}
	for _, n := range nodes {
		branches[n.Name] = c.waitAnnotation(ctx, "db-client-"+n.Name)
		var pr pair
		// As kubelet: ADD until ipamd knows the trunk.
		err := kubefwd.Eventually(ctx, 40*time.Second, func() error {
			p, err := c.v.AddPod(ctx, n, podNS, "db-client-"+n.Name)
			pr.client = p
			return err
		})
		if err != nil {
			t.Fatalf("db-client on %s never started: %v\nipamd log tail:\n%s", n.Name, err, tail(ipamdLog(n), 30))
		}
		if pr.plain, err = c.v.AddPod(ctx, n, podNS, "web-"+n.Name); err != nil {
			t.Fatalf("ADD web on %s: %v\nipamd log tail:\n%s", n.Name, err, tail(ipamdLog(n), 30))
		}
		pods[n.Name] = pr
		t.Logf("%s (%s): db-client %s on branch %s VLAN %d, web %s", n.Name, zones[n.Name], pr.client.IP, branches[n.Name].ENIID, branches[n.Name].VlanID, pr.plain.IP)
	}

	enis := map[string]vpcsim.ENIView{}
	for _, e := range c.v.Sim.NetworkInterfaces() {
		enis[e.ID] = e
	}
	db := dbAddr(t, c.v)
	internet := dataplane.DefaultInternetAddrs[0]
	dropsBefore := dbDrops(t, c.v.Sim)
	for _, n := range nodes {
		sub := zonePodSubnets[zones[n.Name]]
		br, cp, pp := branches[n.Name], pods[n.Name].client, pods[n.Name].plain
		// The db-client pod: the branch's address, in the zone's 100.64
		// subnet, held by a branch ENI with the policy's group.
		if cp.IP.String() != br.PrivateIP || !sub.cidr.Contains(cp.IP) {
			t.Errorf("%s: db-client %s on branch %+v, want the branch's address in %s", n.Name, cp.IP, br, sub.cidr)
		}
		if e := enis[br.ENIID]; e.InterfaceType != "branch" || e.SubnetID != sub.id || !slices.Equal(e.Groups, []string{dbClientSG}) {
			t.Errorf("%s: branch %s type %q subnet %s groups %v, want a branch in %s with [%s]", n.Name, br.ENIID, e.InterfaceType, e.SubnetID, e.Groups, sub.id, dbClientSG)
		}
		// The ordinary pod: a shared pod ENI of this node in the same
		// subnet, with the ENIConfig's group.
		h, err := c.v.Locate(pp.IP)
		switch e := enis[h.ENIID]; {
		case err != nil:
			t.Errorf("%s: web address %s: %v", n.Name, pp.IP, err)
		case !sub.cidr.Contains(pp.IP) || h.DeviceIndex == 0 || e.InterfaceType == "branch" || e.InterfaceType == "trunk":
			t.Errorf("%s: web %s on ENI %s (device %d, %q), want a 100.64 address on a shared pod ENI", n.Name, pp.IP, h.ENIID, h.DeviceIndex, e.InterfaceType)
		case e.Attachment == nil || e.Attachment.InstanceID != n.ID || e.SubnetID != sub.id || !slices.Equal(e.Groups, []string{podSG}):
			t.Errorf("%s: web's ENI %s (%+v) in %s with %v, want one of %s in %s with [%s]", n.Name, e.ID, e.Attachment, e.SubnetID, e.Groups, n.Name, sub.id, podSG)
		}
		// The database admits the policy's group only.
		if got, err := cp.WhoamiWithin(ctx, db, reachBound); err != nil || got != cp.IP {
			t.Errorf("%s: db-client %s → database %s: saw %v, %v; want a connection from the pod's address", n.Name, cp.IP, db, got, err)
		}
		if got, err := pp.Whoami(ctx, db); err == nil {
			t.Errorf("%s: web %s → database %s connected (far end saw %s); group %s is not admitted", n.Name, pp.IP, db, got, podSG)
		}
		// Internet egress of the shared-ENI pod leaves as the node.
		if !n.PublicIP.IsValid() {
			t.Fatalf("%s has no public IP: the scenario maps them", n.Name)
		}
		if got, err := pp.WhoamiWithin(ctx, internet, reachBound); err != nil || got != n.PublicIP {
			t.Errorf("%s: web %s → internet %s: far end saw %v (%v); want %s, the 1:1 NAT of the node's primary %s (pod SNATed to it)", n.Name, pp.IP, internet, got, err, n.PublicIP, n.PrimaryIP)
		}
	}
	if d := dbDrops(t, c.v.Sim); d.Packets <= dropsBefore.Packets || !slices.Equal(d.Groups, []string{dbSG}) {
		t.Errorf("/sgdrops for %s ingress: %+v before, %+v after two refused connections; want more packets dropped by [%s]", dbENI, dropsBefore, d, dbSG)
	}

	for _, n := range nodes {
		for _, p := range []*localvpc.Pod{pods[n.Name].client, pods[n.Name].plain} {
			if _, err := c.v.DelPod(ctx, p); err != nil {
				t.Errorf("DEL %s: %v", p.Name, err)
			}
		}
		if cpt, err := n.Checkpoint(); err != nil || len(cpt) != 0 {
			t.Errorf("%s: ipamd still holds %v (%v) after every pod was deleted", n.Name, cpt, err)
		}
	}
}
