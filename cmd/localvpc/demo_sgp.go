package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/vpc-cni/vpc-cni/pkg/apis/vpcresources/v1beta1"
	"github.com/vpc-cni/vpc-cni/pkg/localkube"
	"github.com/vpc-cni/vpc-cni/pkg/localkube/forward"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/resourcecontroller"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// The security-groups-for-pods tour (docs/compatibility.md, "Security
// groups for pods"): a real kube-apiserver + etcd, the resource controller
// (trunk, webhook, branch ENIs) and one ENABLE_POD_ENI node of
// misc/scenarios/sgp.yaml. A SecurityGroupPolicy gives role=db-client pods
// a branch ENI in group db-client; the "database" admits only that group.
const (
	totalStepsSGP = 7
	sgpScenario   = "misc/scenarios/sgp.yaml"
	sgpNamespace  = "shop"
	sgpDBClientSG = "sg-00000000000000dbc"
	sgpDBSG       = "sg-000000000000000db"
	sgpDBENI      = "eni-000000000000000db"
	sgpNodeSG     = "sg-00000000000000001"
	// sgpCooldown is the branch cool-down after a pod is deleted (EKS: 60 s),
	// short so the tour can show the branch go.
	sgpCooldown = 3 * time.Second
)

func (d *demo) stepfS(format string, a ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n[SGP %d/%d] %s\n", d.step, totalStepsSGP, fmt.Sprintf(format, a...))
}

// sgpTour holds what the tour started besides the VPC.
type sgpTour struct {
	kube  *localkube.Env
	admin client.Client
	stops []func()
}

func (s *sgpTour) stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
}

func (d *demo) runSGP(ctx context.Context) (err error) {
	log, closeLog, err := d.begin()
	if err != nil {
		return err
	}
	defer closeLog()
	ctrllog.SetLogger(logr.FromSlogHandler(log.With("component", "controller-runtime").Handler()))
	s := &sgpTour{}
	defer s.stop()

	d.stepfS("Starting a real kube-apiserver and etcd")
	apiserver, etcd := d.f.kubeAPIServer, d.f.etcd
	if apiserver == "" || etcd == "" {
		return fmt.Errorf("the SGP tour needs kube-apiserver and etcd: -kube-apiserver %q -etcd %q (scripts/demo.sh builds and finds them; or set %s and %s)", apiserver, etcd, localkube.APIServerEnv, localkube.EtcdEnv)
	}
	t0 := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	kube, err := localkube.StartProcesses(sctx, apiserver, etcd)
	cancel()
	if err != nil {
		return fmt.Errorf("kube-apiserver %s with etcd %s: %w", apiserver, etcd, err)
	}
	s.kube = kube
	s.stops = append(s.stops, kube.Stop)
	if err := s.kube.Apply(ctx, "misc/crd-cninode.yaml", "misc/crd-eniconfig.yaml", "misc/crd-securitygrouppolicy.yaml"); err != nil {
		return fmt.Errorf("apply CRDs: %w", err)
	}
	scheme, err := resourcecontroller.NewScheme()
	if err != nil {
		return err
	}
	if err := admissionregistrationv1.AddToScheme(scheme); err != nil {
		return err
	}
	if s.admin, err = client.New(s.kube.Config, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	d.linef("kube-apiserver %s serving after %.1fs; CRDs SecurityGroupPolicy, CNINode, ENIConfig applied", s.kube.Config.Host, time.Since(t0).Seconds())

	d.stepfS("Starting the VPC (%s) with a database and the resource controller", sgpScenario)
	d.removeStale()
	sc, err := vpcsim.LoadScenario(sgpScenario)
	if err != nil {
		return err
	}
	d.v, err = localvpc.Start(ctx, localvpc.Config{Scenario: sc, BinDir: d.f.binDir, Logger: log, SimLogger: log.With("component", "vpcsim")})
	if err != nil {
		return err
	}
	defer d.cleanup(&err) // the same removal and report as the other tours
	db, err := sgpENIAddr(d.v, sgpDBENI)
	if err != nil {
		return err
	}
	if err := d.v.DP.HostENI(sgpDBENI, db); err != nil {
		return err
	}
	d.linef("database %s on ENI %s, group %s: admits tcp/%d only from group %s", db, sgpDBENI, sgpDBSG, dataplane.WhoamiPort, sgpDBClientSG)
	fwd, err := forward.InVPC(d.v.DP.VPCNS(), strings.TrimPrefix(s.kube.Config.Host, "https://"))
	if err != nil {
		return err
	}
	s.stops = append(s.stops, func() { _ = fwd.Close() })
	kubeconfig := filepath.Join(s.kube.Dir, "node-kubeconfig")
	if err := localkube.WriteKubeconfig(kubeconfig, "https://"+forward.VPCAddr.String(), s.kube.Config.BearerToken); err != nil {
		return err
	}
	if err := s.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sgpNamespace, Labels: map[string]string{"sgp-demo": sgpNamespace}}}); err != nil {
		return err
	}
	webhook, err := d.startController(ctx, s, log)
	if err != nil {
		return err
	}
	d.linef("vpc-resource-controller running: EC2 through the AWS SDK, mutating webhook at %s (TLS, CA in the webhook configuration)", webhook)

	n := d.v.Nodes()[0]
	d.stepfS("Starting aws-node on %s with ENABLE_POD_ENI=true", n.Name)
	if err := sgpRegisterNode(ctx, s.admin, d.v, n); err != nil {
		return err
	}
	t0 = time.Now()
	env := []string{"MY_NODE_NAME=" + n.Name, "MY_POD_NAME=aws-node-" + n.Name, "KUBECONFIG=" + kubeconfig, "ENABLE_POD_ENI=true"}
	if err := d.v.StartAgent(ctx, n, env); err != nil {
		return err
	}
	if err := d.v.WaitReady(ctx, n, nil); err != nil {
		return err
	}
	d.linef("%s network-ready after %.1fs", n.Name, time.Since(t0).Seconds())
	var trunk vpcsim.ENIView
	var capacity int64
	err = poll.Until(ctx, 60*time.Second, func() error {
		var node corev1.Node
		if err := s.admin.Get(ctx, client.ObjectKey{Name: n.Name}, &node); err != nil {
			return err
		}
		q := node.Status.Capacity[resourcecontroller.PodENIResource]
		capacity = q.Value()
		for _, e := range d.v.ENIs(n) {
			if e.InterfaceType == "trunk" && capacity > 0 {
				trunk = e
				return nil
			}
		}
		return fmt.Errorf("no trunk ENI on %s or no %s capacity yet", n.Name, resourcecontroller.PodENIResource)
	})
	if err != nil {
		return err
	}
	d.check(trunk.ID != "", "the controller attached trunk ENI %s to %s as eth%d (ipamd's CNINode asked for it)", trunk.ID, n.Name, trunk.Attachment.DeviceIndex)
	d.check(capacity > 0, "node %s capacity %s: %d (m5.large's branch limit)", n.Name, resourcecontroller.PodENIResource, capacity)

	d.stepfS("A SecurityGroupPolicy selects role: db-client pods; two pods are created through the API server")
	policy := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Name: "db-client", Namespace: sgpNamespace},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "db-client"}}, SecurityGroups: v1beta1.GroupIDs{Groups: []string{sgpDBClientSG}}}}
	if err := s.admin.Create(ctx, policy); err != nil {
		return err
	}
	d.linef("SecurityGroupPolicy %s/db-client: podSelector role=db-client → groups [%s]", sgpNamespace, sgpDBClientSG)
	dbc, err := sgpCreatePod(ctx, s.admin, n, "db-client", "db-client")
	if err != nil {
		return err
	}
	web, err := sgpCreatePod(ctx, s.admin, n, "web", "web")
	if err != nil {
		return err
	}
	_, webAsked := web.Spec.Containers[0].Resources.Limits[resourcecontroller.PodENIResource]
	d.check(dbc.Spec.Containers[0].Resources.Limits.Name(resourcecontroller.PodENIResource, "").Value() == 1 && !webAsked,
		"the webhook gave db-client (only) the limit %s: 1", resourcecontroller.PodENIResource)
	br, err := sgpWaitBranch(ctx, s.admin, "db-client")
	if err != nil {
		return err
	}
	var brENI vpcsim.ENIView
	for _, e := range d.v.Sim.NetworkInterfaces() {
		if e.ID == br.ENIID {
			brENI = e
		}
	}
	d.check(brENI.InterfaceType == "branch" && slices.Equal(brENI.Groups, []string{sgpDBClientSG}),
		"branch ENI %s (type %s, groups %v) on trunk %s, VLAN %d, address %s: annotation %s", br.ENIID, brENI.InterfaceType, brENI.Groups, trunk.ID, br.VlanID, br.PrivateIP, resourcecontroller.PodENIAnnotation)
	standin := dataplane.StandinName(br.VlanID)
	d.describeStandin(ctx, n, standin)

	// As kubelet would: retry the ADD while ipamd learns the trunk from EC2.
	var cp, pp *localvpc.Pod
	err = poll.Until(ctx, 60*time.Second, func() error {
		var err error
		cp, err = d.v.AddPod(ctx, n, sgpNamespace, "db-client")
		return err
	})
	if err != nil {
		return fmt.Errorf("ADD db-client: %w", err)
	}
	if pp, err = d.v.AddPod(ctx, n, sgpNamespace, "web"); err != nil {
		return fmt.Errorf("ADD web: %w", err)
	}
	d.check(cp.IP.String() == br.PrivateIP, "CNI ADD: db-client %s on its branch (%s), web %s on a shared ENI of %s", cp.IP, standin, pp.IP, n.Name)

	d.stepfS("Traffic to the database %s", db)
	d.expect(ctx, cp, db, cp.IP, fmt.Sprintf("db-client (%s, group %s) → database: connected", cp.IP, sgpDBClientSG))
	before, err := sgpDrops(d.v.Sim, sgpDBENI)
	if err != nil {
		return err
	}
	got, werr := pp.Whoami(ctx, db)
	d.check(werr != nil, "web (%s, node group %s) → database: refused (%s)", pp.IP, sgpNodeSG, sgpRefusal(got, werr))
	after, err := sgpDrops(d.v.Sim, sgpDBENI)
	if err != nil {
		return err
	}
	d.check(after.Packets > before.Packets, "vpcsim admin GET /sgdrops: %s ingress dropped by %v: %d → %d packets", sgpDBENI, after.Groups, before.Packets, after.Packets)

	d.stepfS("Removing the pods: CNI DEL, then the pod objects; the branch is deleted after its cool-down (%s)", sgpCooldown)
	for _, p := range []*localvpc.Pod{cp, pp} {
		if _, err := d.v.DelPod(ctx, p); err != nil {
			return err
		}
	}
	cpt, err := n.Checkpoint()
	d.check(err == nil && len(cpt) == 0, "%s: ipamd holds no pod addresses (%d)", n.Name, len(cpt))
	for _, p := range []*corev1.Pod{dbc, web} {
		if err := s.admin.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil {
			return err
		}
	}
	t0 = time.Now()
	err = poll.Until(ctx, 60*time.Second, func() error {
		for _, e := range d.v.Sim.NetworkInterfaces() {
			if e.ID == br.ENIID {
				return fmt.Errorf("branch %s still exists", e.ID)
			}
		}
		return nil
	})
	if err != nil {
		d.check(false, "branch %s after its pod was deleted: %v", br.ENIID, err)
	} else {
		d.check(true, "branch %s deleted %.1fs after its pod", br.ENIID, time.Since(t0).Seconds())
	}

	d.stepfS("Stopping the controller, aws-node, the VPC and the API server")
	d.summary()
	if len(d.failed) > 0 {
		return fmt.Errorf("%d of %d checks failed: %s", len(d.failed), d.checks, strings.Join(d.failed, "; "))
	}
	return nil
}

// describeStandin names the link the branch appears as in n: the local VPC
// wires a branch as a stand-in veth (docs/compatibility.md, "Security groups
// for pods"), and says whether this kernel could have made the real VLAN.
func (d *demo) describeStandin(ctx context.Context, n *localvpc.Node, name string) {
	out, _, err := n.Exec(ctx, nil, nil, "ip", "-d", "link", "show", "dev", name)
	isStandin := err == nil && strings.Contains(string(out), "alias "+dataplane.StandinAlias)
	d.check(isStandin, "the branch appears in %s as %s, alias %s: the data plane's stand-in for the VLAN link", n.Name, name, dataplane.StandinAlias)
	why := "this kernel has no 802.1Q (no /proc/net/vlan), so"
	if _, err := os.Stat("/proc/net/vlan"); err == nil {
		why = "this kernel has 802.1Q, but the local VPC keeps one data plane, so"
	}
	d.linef("%s the branch is a veth with the branch's MAC instead of a VLAN on the trunk;", why)
	d.linef("the plugin adopts it instead of making a VLAN; the real 802.1Q path runs in the VM tier (test/vm)")
}
