// Package customnet runs custom networking end to end: the local VPC
// (vpcsim, its data plane, nodes running the real agent binaries in their
// own namespaces), a real kube-apiserver with the ENIConfig CRD, Node
// objects labelled with their zone and one ENIConfig per AZ naming a subnet
// of the VPC's 100.64.0.0/16 secondary CIDR. Gated on VPC_CNI_PRIVILEGED=1
// and the Kubernetes tier's VPC_CNI_KUBE_APISERVER / VPC_CNI_ETCD.
package customnet

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubefwd"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/vpctest"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

const (
	zoneLabel = "topology.kubernetes.io/zone"
	podSG     = "sg-00000000000000002"
	// awsNodeNamespace is where the aws-node pods (and their events) live.
	awsNodeNamespace = "kube-system"
)

// podSubnets is the ENIConfig layout: AZ → the AZ's 100.64 subnet.
var podSubnets = map[string]struct {
	ID   string
	CIDR netip.Prefix
}{
	"us-west-2a": {"subnet-00000000000000004", netip.MustParsePrefix("100.64.0.0/19")},
	"us-west-2b": {"subnet-00000000000000005", netip.MustParsePrefix("100.64.32.0/19")},
}

var internet = dataplane.DefaultInternetAddrs[0]

// cluster is a local VPC plus an API server its nodes can reach.
type cluster struct {
	t          *testing.T
	v          *localvpc.VPC
	kube       *kubeenv.Env
	cs         *kubernetes.Clientset
	kubeconfig string // path readable inside the nodes
}

// newCluster starts the API server (ENIConfig CRD applied), the local VPC
// of testdata/custom-net.yaml and the forwarder from the VPC to the API
// server. No agent runs yet. Everything is removed when the test ends, and
// namespaces left behind fail the test.
func newCluster(t *testing.T, ctx context.Context) *cluster {
	t.Helper()
	testutil.Privileged(t)
	if _, err := os.Stat(filepath.Join(localvpc.DefaultRefPluginDir, "portmap")); err != nil {
		t.Skipf("reference CNI plugins missing (%v): install containernetworking-plugins (scripts/install-deps.sh)", err)
	}
	kube := kubeenv.Start(t)
	if err := kube.Apply(ctx, filepath.Join(agentbin.RepoRoot(), "misc", "crd-eniconfig.yaml")); err != nil {
		t.Fatalf("apply the ENIConfig CRD: %v", err)
	}
	cs, err := kubernetes.NewForConfig(kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := vpcsim.LoadScenario(filepath.Join("testdata", "custom-net.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v := vpctest.Start(t, ctx, sc, "vpccni-customnet-logs")
	fwd, err := kubefwd.Forward(v.DP.VPCNS(), strings.TrimPrefix(kube.Config.Host, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Close() })
	c := &cluster{t: t, v: v, kube: kube, cs: cs, kubeconfig: filepath.Join(t.TempDir(), "kubeconfig")}
	if err := kubefwd.WriteKubeconfig(c.kubeconfig, "https://"+kubefwd.Addr.String(), kube.Config.BearerToken); err != nil {
		t.Fatal(err)
	}
	return c
}

func init() {
	// controller-runtime's client asks for a logger; ours has nothing to say.
	ctrllog.SetLogger(logr.Discard())
}

// awsNodePod names a node's aws-node pod.
func awsNodePod(n *localvpc.Node) string { return "aws-node-" + n.Name }

// register creates n's Node object labelled with its zone and its aws-node
// pod (so ipamd's events point at a pod that exists), and turns connection
// tracking on in the node as kube-proxy would.
func (c *cluster) register(ctx context.Context, n *localvpc.Node) string {
	c.t.Helper()
	inst, err := c.v.Sim.Instance(n.ID)
	if err != nil {
		c.t.Fatal(err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
		zoneLabel:                          inst.AZ,
		"node.kubernetes.io/instance-type": inst.Type,
	}}}
	if _, err := c.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
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
	if _, err := c.cs.CoreV1().Pods(awsNodeNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		c.t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return inst.AZ
}

// createENIConfig creates the ENIConfig named after az, naming the AZ's pod
// subnet and the pod security group.
func (c *cluster) createENIConfig(ctx context.Context, az string) {
	c.t.Helper()
	sub, ok := podSubnets[az]
	if !ok {
		c.t.Fatalf("no pod subnet for %s", az)
	}
	ec := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "crd.k8s.amazonaws.com/v1alpha1",
		"kind":       "ENIConfig",
		"metadata":   map[string]any{"name": az},
		"spec":       map[string]any{"subnet": sub.ID, "securityGroups": []any{podSG}},
	}}
	cl, err := client.New(c.kube.Config, client.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cl.Create(ctx, ec); err != nil && !apierrors.IsAlreadyExists(err) {
		c.t.Fatalf("create ENIConfig %s: %v", az, err)
	}
}

// setENIConfig points the ENIConfig named az at subnet and security group.
func (c *cluster) setENIConfig(ctx context.Context, az, subnet, sg string) {
	c.t.Helper()
	cl, err := client.New(c.kube.Config, client.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	ec := &unstructured.Unstructured{}
	ec.SetAPIVersion("crd.k8s.amazonaws.com/v1alpha1")
	ec.SetKind("ENIConfig")
	ec.SetName(az)
	patch := fmt.Appendf(nil, `{"spec":{"subnet":%q,"securityGroups":[%q]}}`, subnet, sg)
	if err := cl.Patch(ctx, ec, client.RawPatch(types.MergePatchType, patch)); err != nil {
		c.t.Fatalf("update ENIConfig %s: %v", az, err)
	}
}

// agentEnv is the aws-node container's environment for custom networking
// on n (localvpc adds the AWS and path settings).
func (c *cluster) agentEnv(n *localvpc.Node, extra ...string) []string {
	return append([]string{
		"MY_NODE_NAME=" + n.Name,
		"MY_POD_NAME=" + awsNodePod(n),
		"KUBECONFIG=" + c.kubeconfig,
		"AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true",
		"ENI_CONFIG_LABEL_DEF=" + zoneLabel,
	}, extra...)
}

// ipamdLog is the node's ipamd log file.
func ipamdLog(n *localvpc.Node) string {
	b, err := os.ReadFile(n.HostPath(localvpc.NodeLogDir + "/ipamd.log"))
	if err != nil {
		return ""
	}
	return string(b)
}
