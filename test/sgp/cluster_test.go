// Package sgp runs the security-groups-for-pods walkthrough end to end: the
// local VPC (vpcsim, its data plane, a node running the real agent with
// ENABLE_POD_ENI=true), a real kube-apiserver with the SecurityGroupPolicy,
// CNINode and ENIConfig CRDs, and the VPC resource controller (manager,
// admission webhook, trunk and branch ENIs) in this process, speaking to
// vpcsim with the AWS SDK. This kernel has no 802.1Q: a branch appears in
// its node as the data plane's stand-in link vlan.eth.<vlan>
// (docs/compatibility.md, "Security groups for pods"). Gated on
// VPC_CNI_PRIVILEGED=1 and the Kubernetes tier's VPC_CNI_KUBE_APISERVER /
// VPC_CNI_ETCD.
package sgp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/vpc-cni/vpc-cni/pkg/apis/vpcresources/v1beta1"
	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/resourcecontroller"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubefwd"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/vpctest"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// The walkthrough's names (testdata/sgp.yaml).
const (
	nodeSG     = "sg-00000000000000001"
	dbClientSG = "sg-00000000000000dbc"
	dbSG       = "sg-000000000000000db"
	dbENI      = "eni-000000000000000db"
	// The custom-networking pod subnet and group (the ENIConfig's).
	podSubnetID = "subnet-00000000000000004"
	podSG       = "sg-00000000000000002"
	zoneLabel   = "topology.kubernetes.io/zone"
	podNS       = "sgp"
	// awsNodeNamespace is where the aws-node pods (and their events) live.
	awsNodeNamespace = "kube-system"
)

// podSubnetCIDR is the custom-networking pod subnet of the scenario.
var podSubnetCIDR = netip.MustParsePrefix("100.64.0.0/19")

func init() {
	// controller-runtime's client asks for a logger; the controller's own
	// log goes to the test log.
	ctrllog.SetLogger(logr.Discard())
}

// cluster is a local VPC, an API server its nodes reach, and the resource
// controller.
type cluster struct {
	t          *testing.T
	v          *localvpc.VPC
	kube       *kubeenv.Env
	admin      client.Client
	kubeconfig string // path readable inside the nodes
}

// newCluster starts the API server (CRDs from misc/ applied), the local VPC
// of testdata/<scenario> with the database served on its ENI, the forwarder
// from the VPC to the API server, and the resource controller with its
// webhook for namespace podNS. No agent runs yet. Everything is removed
// when the test ends; namespaces left behind fail the test.
func newCluster(t *testing.T, ctx context.Context, scenario string) *cluster {
	t.Helper()
	testutil.Privileged(t)
	if _, err := os.Stat(filepath.Join(localvpc.DefaultRefPluginDir, "portmap")); err != nil {
		t.Skipf("reference CNI plugins missing (%v): install containernetworking-plugins (scripts/install-deps.sh)", err)
	}
	kube := kubeenv.Start(t)
	var crds []string
	for _, f := range []string{"crd-cninode.yaml", "crd-eniconfig.yaml", "crd-securitygrouppolicy.yaml"} {
		crds = append(crds, filepath.Join(agentbin.RepoRoot(), "misc", f))
	}
	if err := kube.Apply(ctx, crds...); err != nil {
		t.Fatalf("apply CRDs: %v", err)
	}
	scheme, err := resourcecontroller.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	if err := admissionregistrationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(kube.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := vpcsim.LoadScenario(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	v := vpctest.Start(t, ctx, sc, "vpccni-sgp-logs")
	if err := v.DP.HostENI(dbENI, dbAddr(t, v)); err != nil {
		t.Fatal(err)
	}
	fwd, err := kubefwd.Forward(v.DP.VPCNS(), strings.TrimPrefix(kube.Config.Host, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Close() })
	c := &cluster{t: t, v: v, kube: kube, admin: admin, kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")}
	if err := kubefwd.WriteKubeconfig(c.kubeconfig, "https://"+kubefwd.Addr.String(), kube.Config.BearerToken); err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: podNS, Labels: map[string]string{"sgp-test": podNS}}}
	if err := admin.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	c.startController(ctx)
	return c
}

// dbAddr is the database ENI's primary address.
func dbAddr(t *testing.T, v *localvpc.VPC) netip.Addr {
	t.Helper()
	for _, e := range v.Sim.NetworkInterfaces() {
		if e.ID == dbENI {
			return e.PrimaryIP
		}
	}
	t.Fatalf("scenario has no ENI %s", dbENI)
	return netip.Addr{}
}

// startController runs the resource controller against the API server and
// vpcsim's EC2 API (served on loopback to this process), with its webhook
// registered for podNS. It stops when the test ends.
func (c *cluster) startController(ctx context.Context) {
	t := c.t
	t.Helper()
	ec2srv := httptest.NewServer(c.v.Sim.EC2Handler())
	t.Cleanup(ec2srv.Close)
	ec2, err := awsutils.NewEC2(ctx, awsutils.Config{
		Region: c.v.Region, EC2Endpoint: ec2srv.URL, ClusterName: "sgp",
		Credentials: &awsutils.StaticCredentials{AccessKeyID: "AKIDSGP", SecretAccessKey: "secret"},
		Limits:      awsutils.RateLimits{Disabled: true},
		DetachPoll:  awsutils.Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cert, caPEM, err := resourcecontroller.GenerateServingCert([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	mgr, err := resourcecontroller.NewManager(c.kube.Config, resourcecontroller.ManagerOptions{
		WebhookHost: "127.0.0.1", WebhookPort: port, WebhookCert: &cert,
		MetricsAddr: "0", HealthAddr: "0",
		Logger: logr.FromSlogHandler(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	vpcID, err := c.v.VPCID()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := resourcecontroller.New(resourcecontroller.Config{
		ClusterName: "sgp", VPCID: vpcID, Cooldown: time.Second, CooldownTick: 100 * time.Millisecond,
		GCInterval: time.Second, RetryDelay: 200 * time.Millisecond, Log: log,
	}, ec2)
	if err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(context.Background())
	if err := rc.SetupWithManager(mctx, mgr); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("controller manager stopped: %v", err)
		}
	})
	c.registerWebhook(ctx, port, caPEM)
	err = kubefwd.Eventually(ctx, 30*time.Second, func() error {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return fmt.Errorf("webhook not serving: %w", err)
		}
		return conn.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// registerWebhook points a MutatingWebhookConfiguration for podNS at the
// controller, trusting its CA; pods elsewhere (aws-node) are not sent.
func (c *cluster) registerWebhook(ctx context.Context, port int, caPEM []byte) {
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, resourcecontroller.WebhookPath)
	cfg := resourcecontroller.WebhookConfiguration("vpc-resource-mutating-webhook", url, caPEM, map[string]string{"sgp-test": podNS})
	if err := c.admin.Create(ctx, cfg); err != nil {
		c.t.Fatal(err)
	}
}

// register creates n's Node object (zone label, providerID naming its
// instance, as kubelet registers it on EC2) and its aws-node pod, and
// returns the node's zone.
func (c *cluster) register(ctx context.Context, n *localvpc.Node) string {
	c.t.Helper()
	inst, err := c.v.Sim.Instance(n.ID)
	if err != nil {
		c.t.Fatal(err)
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
			zoneLabel:                          inst.AZ,
			"node.kubernetes.io/instance-type": inst.Type,
			"kubernetes.io/os":                 "linux",
		}},
		Spec: corev1.NodeSpec{ProviderID: fmt.Sprintf("aws:///%s/%s", inst.AZ, inst.ID)},
	}
	if err := c.admin.Create(ctx, node); err != nil {
		c.t.Fatalf("create node %s: %v", n.Name, err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: awsNodePod(n), Namespace: awsNodeNamespace, Labels: map[string]string{"k8s-app": "aws-node"}},
		Spec: corev1.PodSpec{
			NodeName:    n.Name,
			HostNetwork: true,
			Containers:  []corev1.Container{{Name: "aws-node", Image: "vpc-cni:local"}},
		},
	}
	if err := c.admin.Create(ctx, pod); err != nil {
		c.t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return inst.AZ
}

// agentEnv is the aws-node container's environment for SGP on n (localvpc
// adds the AWS and path settings).
func (c *cluster) agentEnv(n *localvpc.Node, extra ...string) []string {
	return append([]string{
		"MY_NODE_NAME=" + n.Name,
		"MY_POD_NAME=" + awsNodePod(n),
		"KUBECONFIG=" + c.kubeconfig,
		"ENABLE_POD_ENI=true",
	}, extra...)
}

// addPolicy creates a SecurityGroupPolicy in podNS.
func (c *cluster) addPolicy(ctx context.Context, name string, podLabels map[string]string, groups ...string) {
	c.t.Helper()
	p := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: podNS},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: &metav1.LabelSelector{MatchLabels: podLabels}, SecurityGroups: v1beta1.GroupIDs{Groups: groups}}}
	if err := c.admin.Create(ctx, p); err != nil {
		c.t.Fatal(err)
	}
}

// createPod creates a pod in podNS bound to node, as the scheduler would.
func (c *cluster) createPod(ctx context.Context, name string, node *localvpc.Node, labels map[string]string) *corev1.Pod {
	c.t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: podNS, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "c", Image: "none"}}}}
	if err := c.admin.Create(ctx, p); err != nil {
		c.t.Fatalf("create pod %s: %v", name, err)
	}
	return p
}

// awsNodePod names a node's aws-node pod.
func awsNodePod(n *localvpc.Node) string { return "aws-node-" + n.Name }

// ipamdLog is the node's ipamd log file.
func ipamdLog(n *localvpc.Node) string {
	b, err := os.ReadFile(n.HostPath(localvpc.NodeLogDir + "/ipamd.log"))
	if err != nil {
		return ""
	}
	return string(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
