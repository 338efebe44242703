package sgp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/resourcecontroller"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubefwd"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// reachBound is how long a connection expected to work may take: a loaded
// 2-core CI machine gets a generous bound. Connections expected to be
// dropped keep Pod.Whoami's 5 s.
const reachBound = 30 * time.Second

// workingWait is how long other work expected to happen may take (a link
// appearing or going, a CNINode feature written), for the same reason.
const workingWait = 30 * time.Second

// walkthrough is the walkthrough's state once both pods run.
type walkthrough struct {
	c      *cluster
	n      *localvpc.Node
	db     netip.Addr
	br     resourcecontroller.BranchENI
	client *localvpc.Pod // role=db-client, on the branch
	plain  *localvpc.Pod // role=web, on a shared ENI
	before state         // the node before either ADD
}

// startWalkthrough: a SecurityGroupPolicy selects role=db-client pods; the
// resource controller gives the node a trunk and the db-client pod a
// branch ENI in group db-client (the webhook having asked for it); the
// agent wires the pod onto the branch (its stand-in link vlan.eth.<vlan>
// in the node), and an ordinary pod onto a shared ENI.
//
// With customNet the node runs custom networking: the ENIConfig named
// after its zone puts pod ENIs, and the branch, in the 100.64 pod subnet.
func startWalkthrough(t *testing.T, ctx context.Context, customNet bool) *walkthrough {
	c := newCluster(t, ctx, "sgp.yaml")
	n := c.v.Nodes()[0]
	w := &walkthrough{c: c, n: n, db: dbAddr(t, c.v)}
	az := c.register(ctx, n)
	// Fast timers: ipamd learns of the trunk at its EC2 reconcile, every
	// 60 s by default.
	env := c.agentEnv(n, "VPC_CNI_TEST_FAST_INTERVALS=true")
	if customNet {
		ec := &eniconfig.ENIConfig{ObjectMeta: metav1.ObjectMeta{Name: az}, Spec: eniconfig.Spec{Subnet: podSubnetID, SecurityGroups: []string{podSG}}}
		if err := c.admin.Create(ctx, ec); err != nil {
			t.Fatalf("create ENIConfig %s: %v", az, err)
		}
		env = append(env, "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true", "ENI_CONFIG_LABEL_DEF="+zoneLabel)
	}
	if err := c.v.StartAgent(ctx, n, env); err != nil {
		t.Fatal(err)
	}
	if err := c.v.WaitReady(ctx, n, nil); err != nil {
		t.Fatalf("%v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 20))
	}
	c.addPolicy(ctx, "db-client", map[string]string{"role": "db-client"}, dbClientSG)
	trunk := c.waitTrunk(ctx, n)
	t.Logf("trunk %s on %s (device %d)", trunk.ID, n.Name, trunk.Attachment.DeviceIndex)
	if customNet {
		c.waitCustomNet(ctx, n, az)
	}

	dbc := c.createPod(ctx, "db-client", n, map[string]string{"role": "db-client"})
	if l := dbc.Spec.Containers[0].Resources.Limits[resourcecontroller.PodENIResource]; l.Value() != 1 {
		t.Fatalf("db-client pod limits %v: the webhook did not ask for a branch ENI", dbc.Spec.Containers[0].Resources.Limits)
	}
	web := c.createPod(ctx, "web", n, map[string]string{"role": "web"})
	if _, ok := web.Spec.Containers[0].Resources.Limits[resourcecontroller.PodENIResource]; ok {
		t.Fatalf("ordinary pod was given %s", resourcecontroller.PodENIResource)
	}
	w.br = c.waitAnnotation(ctx, "db-client")
	t.Logf("branch %s VLAN %d %s in %s", w.br.ENIID, w.br.VlanID, w.br.PrivateIP, w.br.SubnetCIDR)
	standin := dataplane.StandinName(w.br.VlanID)
	if err := kubefwd.Eventually(ctx, workingWait, func() error { return linkExists(ctx, n, standin) }); err != nil {
		t.Fatalf("branch stand-in in %s: %v", n.Name, err)
	}
	w.before = nodeState(t, ctx, n)

	// As kubelet: ADD until ipamd knows the trunk (it learns it from EC2
	// at its next reconcile).
	err := kubefwd.Eventually(ctx, 40*time.Second, func() error {
		p, err := c.v.AddPod(ctx, n, podNS, "db-client")
		if err != nil {
			t.Logf("ADD db-client: %v", err)
			return err
		}
		w.client = p
		return nil
	})
	if err != nil {
		t.Fatalf("db-client pod never started: %v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 30))
	}
	if w.plain, err = c.v.AddPod(ctx, n, podNS, "web"); err != nil {
		t.Fatalf("ADD web: %v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 30))
	}
	t.Logf("db-client pod %s, web pod %s, database %s", w.client.IP, w.plain.IP, w.db)
	return w
}

// The walkthrough, control plane and the refusal: the db-client pod is on
// its branch ENI (the branch's address and group, the stand-in link in the
// node); an ordinary pod on the same node (shared ENI) is refused by the
// database, whose group admits only db-client, and the refusal shows in the
// database ENI's drop counter on vpcsim's admin API. DEL leaves nothing of
// either pod in the node, and deleting the pods deletes the branch (after
// the cool-down) and its link.
func TestPrivilegedSGPWalkthrough(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	w := startWalkthrough(t, ctx, false)
	c, n, br, cp, pp, db := w.c, w.n, w.br, w.client, w.plain, w.db
	standin := dataplane.StandinName(br.VlanID)

	// The db-client pod is the branch: its address, held by the branch ENI
	// in group db-client.
	if cp.IP.String() != br.PrivateIP {
		t.Errorf("db-client pod has %s, want its branch's %s", cp.IP, br.PrivateIP)
	}
	enis := map[string]vpcsim.ENIView{}
	for _, e := range c.v.Sim.NetworkInterfaces() {
		enis[e.ID] = e
	}
	if h, err := c.v.Locate(cp.IP); err != nil || h.ENIID != br.ENIID {
		t.Errorf("db-client address %s held by %+v (%v), want branch %s", cp.IP, h, err, br.ENIID)
	}
	if e := enis[br.ENIID]; e.InterfaceType != "branch" || !slices.Equal(e.Groups, []string{dbClientSG}) {
		t.Errorf("branch %s: type %q groups %v, want a branch in [%s]", br.ENIID, e.InterfaceType, e.Groups, dbClientSG)
	}
	// The ordinary pod is on one of the node's shared ENIs, in the node's group.
	h, err := c.v.Locate(pp.IP)
	switch e := enis[h.ENIID]; {
	case err != nil:
		t.Errorf("web address %s: %v", pp.IP, err)
	case e.InterfaceType != "interface" && e.InterfaceType != "":
		t.Errorf("web address %s is on %s ENI %s, want a shared ENI", pp.IP, e.InterfaceType, e.ID)
	case e.Attachment == nil || e.Attachment.InstanceID != n.ID || !slices.Equal(e.Groups, []string{nodeSG}):
		t.Errorf("web address %s is on ENI %s (%+v, groups %v), want an ENI of %s in [%s]", pp.IP, e.ID, e.Attachment, e.Groups, n.Name, nodeSG)
	}

	// The database refuses the ordinary pod, and says which group did.
	dropsBefore := dbDrops(t, c.v.Sim)
	if got, err := pp.Whoami(ctx, db); err == nil {
		t.Errorf("web (%s) → database %s connected (far end saw %s); its group %s is not admitted", pp.IP, db, got, nodeSG)
	} else {
		t.Logf("web → database refused: %v", err)
	}
	dropsAfter := dbDrops(t, c.v.Sim)
	if dropsAfter.Packets <= dropsBefore.Packets || !slices.Equal(dropsAfter.Groups, []string{dbSG}) {
		t.Errorf("/sgdrops for %s ingress: %+v before, %+v after the refused connection; want more packets dropped by [%s]", dbENI, dropsBefore, dropsAfter, dbSG)
	} else {
		t.Logf("/sgdrops: %s ingress by %v: %d → %d packets", dbENI, dropsAfter.Groups, dropsBefore.Packets, dropsAfter.Packets)
	}

	// DEL leaves nothing of either pod in the node; a second DEL is harmless.
	for _, p := range []*localvpc.Pod{cp, pp} {
		if _, err := c.v.DelPod(ctx, p); err != nil {
			t.Errorf("DEL %s: %v", p.Name, err)
		}
		if _, err := c.v.CNIDel(ctx, p); err != nil {
			t.Errorf("second DEL %s: %v", p.Name, err)
		}
	}
	// A pod's host link goes when the kernel frees its namespace.
	err = kubefwd.Eventually(ctx, workingWait, func() error {
		after := nodeState(t, ctx, n)
		for _, l := range after.links {
			if !slices.Contains(w.before.links, l) && !strings.HasPrefix(l, "eth") {
				return fmt.Errorf("link %s appeared in %s and outlived DEL", l, n.Name)
			}
		}
		for _, ip := range []netip.Addr{cp.IP, pp.IP} {
			for _, l := range after.routing {
				if slices.ContainsFunc(strings.Fields(l), func(f string) bool { return f == ip.String() || f == ip.String()+"/32" }) {
					return fmt.Errorf("%s's rules or routes still name pod address %s: %s", n.Name, ip, l)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("after DEL: %v", err)
	}
	if err := linkExists(ctx, n, standin); err != nil {
		t.Errorf("DEL removed the branch's own link %s (it belongs to the branch, not the pod): %v", standin, err)
	}
	if cpt, err := n.Checkpoint(); err != nil || len(cpt) != 0 {
		t.Errorf("ipamd still holds %v (%v) after every pod was deleted", cpt, err)
	}

	// Deleting the pod objects: the branch goes after the cool-down, and
	// its link with it.
	for _, name := range []string{"db-client", "web"} {
		p := &corev1.Pod{}
		p.Namespace, p.Name = podNS, name
		if err := c.admin.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
	}
	err = kubefwd.Eventually(ctx, 30*time.Second, func() error {
		for _, e := range c.v.Sim.NetworkInterfaces() {
			if e.ID == br.ENIID {
				return fmt.Errorf("branch %s still exists (%s)", e.ID, e.Status)
			}
		}
		if err := linkExists(ctx, n, standin); err == nil {
			return fmt.Errorf("stand-in link %s still in %s", standin, n.Name)
		}
		return nil
	})
	if err != nil {
		t.Errorf("after the pods were deleted: %v", err)
	}
}

// Custom networking with security groups for pods: the branch is made in
// the ENIConfig's 100.64 subnet with the policy's group, the ordinary pod
// gets a 100.64 address on a pod ENI with the ENIConfig's group (the
// primary ENI holds none), and the database refuses it.
func TestPrivilegedSGPCustomNetworking(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	w := startWalkthrough(t, ctx, true)
	c, n, br, cp, pp := w.c, w.n, w.br, w.client, w.plain
	if br.SubnetCIDR != podSubnetCIDR.String() || !podSubnetCIDR.Contains(cp.IP) || cp.IP.String() != br.PrivateIP {
		t.Errorf("db-client pod %s on branch %+v, want the branch's address in the ENIConfig subnet %s", cp.IP, br, podSubnetCIDR)
	}
	enis := map[string]vpcsim.ENIView{}
	for _, e := range c.v.Sim.NetworkInterfaces() {
		enis[e.ID] = e
	}
	if e := enis[br.ENIID]; e.InterfaceType != "branch" || e.SubnetID != podSubnetID || !slices.Equal(e.Groups, []string{dbClientSG}) {
		t.Errorf("branch %s: type %q subnet %s groups %v, want a branch in %s with [%s]", br.ENIID, e.InterfaceType, e.SubnetID, e.Groups, podSubnetID, dbClientSG)
	}
	h, err := c.v.Locate(pp.IP)
	switch e := enis[h.ENIID]; {
	case err != nil:
		t.Errorf("web address %s: %v", pp.IP, err)
	case !podSubnetCIDR.Contains(pp.IP) || h.DeviceIndex == 0 || e.InterfaceType == "branch":
		t.Errorf("web pod %s on ENI %s (device %d, %s), want a 100.64 address on a pod ENI", pp.IP, h.ENIID, h.DeviceIndex, e.InterfaceType)
	case e.SubnetID != podSubnetID || !slices.Equal(e.Groups, []string{podSG}):
		t.Errorf("web pod's ENI %s in %s with %v, want the ENIConfig's %s with [%s]", e.ID, e.SubnetID, e.Groups, podSubnetID, podSG)
	}
	dropsBefore := dbDrops(t, c.v.Sim)
	if got, err := pp.Whoami(ctx, w.db); err == nil {
		t.Errorf("web (%s) → database %s connected (far end saw %s)", pp.IP, w.db, got)
	}
	if d := dbDrops(t, c.v.Sim); d.Packets <= dropsBefore.Packets {
		t.Errorf("/sgdrops for %s ingress: %d packets before and after the refused connection", dbENI, d.Packets)
	}
	for _, p := range []*localvpc.Pod{cp, pp} {
		if _, err := c.v.DelPod(ctx, p); err != nil {
			t.Errorf("DEL %s: %v", p.Name, err)
		}
	}
	if cpt, err := n.Checkpoint(); err != nil || len(cpt) != 0 {
		t.Errorf("ipamd still holds %v (%v) after every pod was deleted", cpt, err)
	}
}

// The walkthrough's other half: the db-client pod, on its branch, reaches
// the database, which sees the pod's own address. The node has no address
// on the stand-in link vlan.eth.<vlan> (nor does a real node on its VLAN
// link), so its ARP for the subnet router carries the node's primary
// address: this fails if the VPC side's port filters ARP by reverse path.
func TestPrivilegedSGPBranchPodReachesDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	w := startWalkthrough(t, ctx, false)
	if got, err := w.client.WhoamiWithin(ctx, w.db, reachBound); err != nil || got != w.client.IP {
		t.Errorf("db-client (%s) → database %s: saw %v, %v; want a connection from %s", w.client.IP, w.db, got, err, w.client.IP)
		out, _, _ := w.n.Exec(ctx, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, nil, "ip", "-s", "neigh", "show", "dev", dataplane.StandinName(w.br.VlanID))
		t.Logf("%s neighbours on %s:\n%s", w.n.Name, dataplane.StandinName(w.br.VlanID), out)
	}
}

// waitCustomNet waits for ipamd to name the ENIConfig az on n's CNINode:
// the controller reads the branch's subnet from it.
func (c *cluster) waitCustomNet(ctx context.Context, n *localvpc.Node, az string) {
	c.t.Helper()
	err := kubefwd.Eventually(ctx, workingWait, func() error {
		var cn k8s.CNINode
		if err := c.admin.Get(ctx, client.ObjectKey{Name: n.Name}, &cn); err != nil {
			return err
		}
		if !slices.Contains(cn.Spec.Features, k8s.CNINodeFeature{Name: k8s.FeatureCustomNetworking, Value: az}) {
			return fmt.Errorf("CNINode %s features %v: no %s=%s", n.Name, cn.Spec.Features, k8s.FeatureCustomNetworking, az)
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("%v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 20))
	}
}

// waitTrunk waits for the controller's trunk ENI on n and the node's
// pod-eni capacity.
func (c *cluster) waitTrunk(ctx context.Context, n *localvpc.Node) vpcsim.ENIView {
	c.t.Helper()
	var trunk vpcsim.ENIView
	err := kubefwd.Eventually(ctx, 40*time.Second, func() error {
		found := false
		for _, e := range c.v.ENIs(n) {
			if e.InterfaceType == "trunk" {
				trunk, found = e, true
			}
		}
		if !found {
			return fmt.Errorf("no trunk ENI attached to %s", n.Name)
		}
		var node corev1.Node
		if err := c.admin.Get(ctx, client.ObjectKey{Name: n.Name}, &node); err != nil {
			return err
		}
		if q, ok := node.Status.Capacity[resourcecontroller.PodENIResource]; !ok || q.Value() == 0 {
			return fmt.Errorf("node %s capacity %v has no %s", n.Name, node.Status.Capacity, resourcecontroller.PodENIResource)
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("%v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 20))
	}
	if trunk.Tags[awsutils.TagENIOwner] != awsutils.ENIOwnerController {
		c.t.Errorf("trunk %s tags %v, want owned by the controller", trunk.ID, trunk.Tags)
	}
	return trunk
}

// waitAnnotation waits for the pod's branch annotation and returns its
// single branch.
func (c *cluster) waitAnnotation(ctx context.Context, name string) resourcecontroller.BranchENI {
	c.t.Helper()
	var out []resourcecontroller.BranchENI
	err := kubefwd.Eventually(ctx, 30*time.Second, func() error {
		var p corev1.Pod
		if err := c.admin.Get(ctx, client.ObjectKey{Namespace: podNS, Name: name}, &p); err != nil {
			return err
		}
		var err error
		out, err = resourcecontroller.PodBranches(&p)
		return err
	})
	if err != nil {
		c.t.Fatal(err)
	}
	if len(out) != 1 {
		c.t.Fatalf("pod %s annotation lists %d branches, want 1: %+v", name, len(out), out)
	}
	return out[0]
}

// dbDrops reads GET /sgdrops from vpcsim's admin API and returns the
// database ENI's ingress counter.
func dbDrops(t *testing.T, sim *vpcsim.Sim) vpcsim.SGDrop {
	t.Helper()
	rec := httptest.NewRecorder()
	sim.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/sgdrops", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /sgdrops: %d %s", rec.Code, rec.Body)
	}
	var all []vpcsim.SGDrop
	if err := json.Unmarshal(rec.Body.Bytes(), &all); err != nil {
		t.Fatalf("GET /sgdrops: %v", err)
	}
	for _, d := range all {
		if d.ENIID == dbENI && d.Direction == "ingress" {
			return d
		}
	}
	return vpcsim.SGDrop{ENIID: dbENI, Direction: "ingress"}
}

// state is what a node's kernel shows of its pods: link names, and every
// rule, route and neighbour line.
type state struct {
	links   []string
	routing []string
}

func nodeState(t *testing.T, ctx context.Context, n *localvpc.Node) state {
	t.Helper()
	var s state
	for _, l := range ipLines(t, ctx, n, "-o", "link", "show") {
		if f := strings.Fields(l); len(f) > 1 {
			s.links = append(s.links, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	s.routing = append(s.routing, ipLines(t, ctx, n, "rule", "show")...)
	s.routing = append(s.routing, ipLines(t, ctx, n, "route", "show", "table", "all")...)
	s.routing = append(s.routing, ipLines(t, ctx, n, "neigh", "show")...)
	return s
}

func ipLines(t *testing.T, ctx context.Context, n *localvpc.Node, args ...string) []string {
	t.Helper()
	out, stderr, err := n.Exec(ctx, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, nil, append([]string{"ip"}, args...)...)
	if err != nil {
		t.Fatalf("ip %v in %s: %v (%s)", args, n.Name, err, stderr)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func linkExists(ctx context.Context, n *localvpc.Node, name string) error {
	_, stderr, err := n.Exec(ctx, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, nil, "ip", "link", "show", "dev", name)
	if err != nil {
		return fmt.Errorf("no link %s in %s: %w (%s)", name, n.Name, err, strings.TrimSpace(string(stderr)))
	}
	return nil
}
