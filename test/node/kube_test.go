package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/vpctest"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// kubeNode is one local-VPC node running containerd and kubelet, with
// aws-node deployed from the manifest and ready.
type kubeNode struct {
	t  *testing.T
	cp *controlPlane
	cs *kubernetes.Clientset
	v  *localvpc.VPC
	k  *localvpc.KubeNode
}

// startCluster starts one kubelet node per local-VPC node of the two-node
// scenario (up to n), deploys aws-node from the manifest and waits until
// every node runs it and is Ready.
func startCluster(t *testing.T, ctx context.Context, n int) []*kubeNode {
	t.Helper()
	imgs := buildImages(t)
	cp := startControlPlane(t, ctx)
	sc, err := vpcsim.LoadScenario(filepath.Join(agentbin.RepoRoot(), "misc", "scenarios", "two-node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v := vpctest.Start(t, ctx, sc, "vpccni-node-logs")
	nodes := v.Nodes()
	if len(nodes) < n {
		t.Fatalf("scenario has %d nodes, want %d", len(nodes), n)
	}
	kns := make([]*kubeNode, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { // containerd start and image imports dominate; nodes overlap
			defer wg.Done()
			k, err := v.StartKubeNode(ctx, nodes[i], localvpc.KubeConfig{
				Kubelet:    filepath.Join(cp.nodeBin, "kubelet"),
				APIServer:  cp.apiHostPort(),
				Token:      cp.env.Config.BearerToken,
				ServiceIP:  serviceIP,
				PauseImage: pauseImage,
				Images:     []string{imgs[mainImage], imgs[initImage], imgs[pauseImage], imgs[bboxImage]},
			})
			if err != nil {
				errs[i] = fmt.Errorf("start kube node on %s: %w", nodes[i].ID, err)
				return
			}
			kns[i] = &kubeNode{t: t, cp: cp, cs: cp.cs, v: v, k: k}
		}()
	}
	wg.Wait()
	for _, kn := range kns {
		if kn == nil {
			continue
		}
		k := kn.k
		// Registered after the VPC's cleanup, so it runs before the VPC closes.
		t.Cleanup(func() {
			if t.Failed() {
				for _, p := range append(k.LogPaths(), k.HostPath(localvpc.NodeLogDir+"/ipamd.log")) {
					b, _ := os.ReadFile(p)
					if len(b) > 4000 {
						b = b[len(b)-4000:]
					}
					t.Logf("%s tail:\n%s", p, b)
				}
			}
			if err := k.Stop(); err != nil {
				t.Errorf("stop kube node %s: %v", k.Name, err)
			}
		})
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, kn := range kns {
		waitFor(t, ctx, "node "+kn.k.Name+" registered", func() (bool, error) {
			_, err := kn.cs.CoreV1().Nodes().Get(ctx, kn.k.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		})
	}
	if err := cp.env.Apply(ctx, deployManifest(t, v.Region)); err != nil {
		t.Fatalf("apply aws-node manifest: %v", err)
	}
	for _, kn := range kns {
		kn.waitAWSNode(ctx, mainImage)
		waitFor(t, ctx, "node "+kn.k.Name+" Ready (CNI installed by aws-node)", func() (bool, error) {
			node, err := kn.cs.CoreV1().Nodes().Get(ctx, kn.k.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady {
					return c.Status == corev1.ConditionTrue, nil
				}
			}
			return false, nil
		})
	}
	return kns
}

// awsNodePod returns the node's aws-node pod, if any.
func (kn *kubeNode) awsNodePod(ctx context.Context) (*corev1.Pod, error) {
	pods, err := kn.cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{
		LabelSelector: "k8s-app=aws-node", FieldSelector: "spec.nodeName=" + kn.k.Name,
	})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			return &pods.Items[i], nil
		}
	}
	return nil, nil
}

// waitAWSNode waits until the node's aws-node pod runs image and is Ready:
// its readiness probe (grpc-health-probe from the image) passed.
func (kn *kubeNode) waitAWSNode(ctx context.Context, image string) *corev1.Pod {
	kn.t.Helper()
	var ready *corev1.Pod
	waitFor(kn.t, ctx, "aws-node pod with "+image+" Ready on "+kn.k.Name, func() (bool, error) {
		p, err := kn.awsNodePod(ctx)
		if err != nil || p == nil {
			return false, err
		}
		if p.Spec.Containers[0].Image != image || !podReady(p) {
			return false, nil
		}
		ready = p
		return true, nil
	})
	return ready
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// createPod creates a busybox pod bound to the node; it stops at once on
// SIGTERM.
func (kn *kubeNode) createPod(ctx context.Context, name string) error {
	grace := int64(2)
	_, err := kn.cs.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "node-test"}},
		Spec: corev1.PodSpec{
			NodeName:                      kn.k.Name,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "main", Image: bboxImage,
				Command: []string{"/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create pod %s: %w", name, err)
	}
	return nil
}

// waitRunning waits until every named pod is Running with an address and
// returns the addresses.
func (kn *kubeNode) waitRunning(ctx context.Context, names ...string) map[string]netip.Addr {
	kn.t.Helper()
	out := map[string]netip.Addr{}
	for _, name := range names {
		waitFor(kn.t, ctx, "pod "+name+" Running", func() (bool, error) {
			p, err := kn.cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
				return false, nil
			}
			ip, err := netip.ParseAddr(p.Status.PodIP)
			if err != nil {
				return false, fmt.Errorf("pod %s IP %q: %w", name, p.Status.PodIP, err)
			}
			out[name] = ip
			return true, nil
		})
	}
	return out
}

// eniAddrs is every address vpcsim has assigned to the node's ENIs
// (secondary IPs and addresses of delegated prefixes are not expanded:
// prefixes are returned separately).
func (kn *kubeNode) eniAddrs() (map[netip.Addr]string, []netip.Prefix) {
	addrs := map[netip.Addr]string{}
	var prefixes []netip.Prefix
	for _, e := range kn.v.ENIs(kn.k.Node) {
		for _, a := range e.SecondaryIPs {
			addrs[a] = e.ID
		}
		prefixes = append(prefixes, e.Prefixes...)
	}
	return addrs, prefixes
}

// assertOnENIs fails unless every address is assigned to one of the node's
// ENIs in vpcsim, and no two pods share one.
func (kn *kubeNode) assertOnENIs(ips map[string]netip.Addr) {
	kn.t.Helper()
	addrs, prefixes := kn.eniAddrs()
	seen := map[netip.Addr]string{}
	for pod, ip := range ips {
		if other, dup := seen[ip]; dup {
			kn.t.Errorf("pods %s and %s share %s", other, pod, ip)
		}
		seen[ip] = pod
		if _, ok := addrs[ip]; ok {
			continue
		}
		inPrefix := false
		for _, p := range prefixes {
			inPrefix = inPrefix || p.Contains(ip)
		}
		if !inPrefix {
			kn.t.Errorf("pod %s has %s, which vpcsim has not assigned to any ENI of %s", pod, ip, kn.k.ID)
		}
	}
}

// TestPrivilegedKubeNode runs the path a user's cluster takes: kubelet on
// two local-VPC nodes, aws-node from the manifest and our image, pods
// created through the API server, traffic within and across nodes, an image
// rollout, pod deletion (DEL reaching ipamd), aws-node deleted under load.
func TestPrivilegedKubeNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	kns := startCluster(t, ctx, 2)
	a, b := kns[0], kns[1]

	// Pods created through the API server get VPC addresses from their
	// node's ENIs.
	for _, p := range []struct {
		kn   *kubeNode
		name string
	}{{a, "web-0"}, {a, "web-1"}, {b, "web-2"}} {
		if err := p.kn.createPod(ctx, p.name); err != nil {
			t.Fatal(err)
		}
	}
	ipsA := a.waitRunning(ctx, "web-0", "web-1")
	ipsB := b.waitRunning(ctx, "web-2")
	a.logPods(ctx)
	a.assertOnENIs(ipsA)
	b.assertOnENIs(ipsB)
	a.assertTraffic(ctx, "web-0", a, "web-1")
	a.assertTraffic(ctx, "web-0", b, "web-2")
	b.assertTraffic(ctx, "web-2", a, "web-1")

	rollImage(t, ctx, kns, map[string]netip.Addr{"web-0": ipsA["web-0"], "web-1": ipsA["web-1"], "web-2": ipsB["web-2"]})

	// Deleting a pod: kubelet tears the sandbox down, containerd sends DEL,
	// ipamd frees the address; vpcsim keeps it in the node's warm pool.
	a.logCounts("before kubectl delete pod web-0")
	if err := a.cs.CoreV1().Pods("default").Delete(ctx, "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	a.waitFreed(ctx, "web-0", ipsA["web-0"])
	a.logCounts("after kubectl delete pod web-0")

	// aws-node deleted while pods are being created: they wait for the new
	// ipamd, then start; no address is handed out twice.
	awsNode, err := a.awsNodePod(ctx)
	if err != nil || awsNode == nil {
		t.Fatalf("aws-node pod: %v", err)
	}
	if err := a.cs.CoreV1().Pods("kube-system").Delete(ctx, awsNode.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	burst := []string{"burst-0", "burst-1", "burst-2", "burst-3"}
	var wg sync.WaitGroup
	errs := make(chan error, len(burst))
	for _, n := range burst {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- a.createPod(ctx, n) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all := a.waitRunning(ctx, append([]string{"web-1"}, burst...)...)
	a.logPods(ctx)
	a.assertOnENIs(all)
	cp, err := a.k.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if len(cp) != len(all) {
		t.Errorf("ipamd's checkpoint on %s holds %d allocations, %d pods run: %v", a.k.Name, len(cp), len(all), cp)
	}

	// Deleting every pod leaves no allocation behind on either node.
	if err := a.cs.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=node-test"}); err != nil {
		t.Fatal(err)
	}
	for _, kn := range kns {
		waitFor(t, ctx, "no pod allocation left in ipamd on "+kn.k.Name, func() (bool, error) {
			cp, err := kn.k.Checkpoint()
			return err == nil && len(cp) == 0, err
		})
		kn.logCounts("after deleting every pod")
	}
	a.assertDels(ctx, "default/web-0")
	for _, kn := range kns {
		kn.assertDelsSucceeded()
	}
}

// rollImage tags the images v2 on every node, patches the DaemonSet to
// them and checks that ipamd came back from its checkpoint on every node:
// each pod keeps its address, vpcsim releases none.
// warmAddrs is what the manifest's WARM_ENI_TARGET=1 keeps free on an
// m5.large: one ENI's secondary addresses.
const warmAddrs = 9

// waitWarmPool waits until ipamd has grown the node's pool to its warm
// target, so that what vpcsim holds before a rollout is what a settled
// ipamd keeps, not a refill still on its way.
func (kn *kubeNode) waitWarmPool(ctx context.Context) {
	kn.t.Helper()
	waitFor(kn.t, ctx, "the warm pool of "+kn.k.Name, func() (bool, error) {
		cp, err := kn.k.Checkpoint()
		if err != nil {
			return false, err
		}
		enis, _ := kn.eniAddrs()
		return len(enis)-len(cp) >= warmAddrs, nil
	})
}

func rollImage(t *testing.T, ctx context.Context, kns []*kubeNode, ips map[string]netip.Addr) {
	t.Helper()
	type state struct {
		cp   map[string]netip.Addr
		enis map[netip.Addr]string
		old  types.UID
	}
	before := map[*kubeNode]state{}
	for _, kn := range kns {
		kn.waitWarmPool(ctx)
		cp, err := kn.k.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		enis, _ := kn.eniAddrs()
		old, err := kn.awsNodePod(ctx)
		if err != nil || old == nil {
			t.Fatalf("aws-node pod on %s: %v", kn.k.Name, err)
		}
		before[kn] = state{cp, enis, old.UID}
		for _, img := range []string{mainImage, initImage} {
			if err := kn.k.TagImage(ctx, img, strings.TrimSuffix(img, ":dev")+":v2"); err != nil {
				t.Fatal(err)
			}
		}
	}
	v2 := strings.TrimSuffix(mainImage, ":dev") + ":v2"
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"initContainers":[{"name":"aws-vpc-cni-init","image":%q}],"containers":[{"name":"aws-node","image":%q}]}}}}`,
		strings.TrimSuffix(initImage, ":dev")+":v2", v2)
	if _, err := kns[0].cs.AppsV1().DaemonSets("kube-system").Patch(ctx, "aws-node", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("roll aws-node: %v", err)
	}
	for _, kn := range kns {
		newPod := kn.waitAWSNode(ctx, v2)
		was := before[kn]
		if newPod.UID == was.old {
			t.Fatalf("the rollout did not replace the aws-node pod on %s", kn.k.Name)
		}
		after, err := kn.k.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		for id, ip := range was.cp {
			if after[id] != ip {
				t.Errorf("after the rollout, container %s on %s holds %v in the checkpoint, had %s", id, kn.k.Name, after[id], ip)
			}
		}
		enis, _ := kn.eniAddrs()
		for addr, eni := range was.enis {
			if enis[addr] != eni {
				t.Errorf("after the rollout, %s is no longer assigned to %s in vpcsim", addr, eni)
			}
		}
		if len(enis) != len(was.enis) {
			t.Errorf("vpcsim holds %d addresses on %s after the rollout, %d before", len(enis), kn.k.Name, len(was.enis))
		}
	}
	var names []string
	for n := range ips {
		names = append(names, n)
	}
	got := kns[0].waitRunning(ctx, names...)
	if fmt.Sprint(got) != fmt.Sprint(ips) {
		t.Errorf("pod addresses changed across the rollout: %v, had %v", got, ips)
	} else {
		t.Logf("DaemonSet rolled to %s on %d nodes; every pod kept its address: %v", v2, len(kns), got)
	}
}

// assertDelsSucceeded fails if containerd reports a failed CNI DEL.
func (kn *kubeNode) assertDelsSucceeded() {
	kn.t.Helper()
	b, err := os.ReadFile(kn.k.LogPaths()[0])
	if err != nil {
		kn.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "failed to destroy network") || strings.Contains(line, "failed to teardown network") {
			kn.t.Errorf("containerd: %s", line)
		}
	}
}

// logPods logs the cluster's pods as `kubectl get pods -A -o wide` would.
func (kn *kubeNode) logPods(ctx context.Context) {
	kn.t.Helper()
	pods, err := kn.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		kn.t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-12s %-16s %-8s %-15s %s\n", "NAMESPACE", "NAME", "STATUS", "IP", "NODE")
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "%-12s %-16s %-8s %-15s %s\n", p.Namespace, p.Name, p.Status.Phase, p.Status.PodIP, p.Spec.NodeName)
	}
	kn.t.Logf("kubectl get pods -A -o wide:\n%s", b.String())
}

// netns returns the network namespace of a pod's first container.
func (kn *kubeNode) netns(ctx context.Context, pod string) (string, netip.Addr) {
	kn.t.Helper()
	p, err := kn.cs.CoreV1().Pods("default").Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		kn.t.Fatal(err)
	}
	if len(p.Status.ContainerStatuses) == 0 {
		kn.t.Fatalf("pod %s has no container status", pod)
	}
	ns, err := kn.k.ContainerNetNS(ctx, p.Status.ContainerStatuses[0].ContainerID)
	if err != nil {
		kn.t.Fatal(err)
	}
	return ns, netip.MustParseAddr(p.Status.PodIP)
}

// reachWait bounds one connection through a path that works: a loaded CI
// machine can take many seconds to connect, and a wrong path still fails
// by then.
const reachWait = 30 * time.Second

// assertTraffic sends TCP from pod a to pod b and from a to the simulated
// internet, and checks the source address each peer sees: a's own address
// inside the VPC, the node's public address (SNAT + the internet gateway)
// outside.
func (kn *kubeNode) assertTraffic(ctx context.Context, a string, peer *kubeNode, b string) {
	kn.t.Helper()
	nsA, ipA := kn.netns(ctx, a)
	nsB, ipB := peer.netns(ctx, b)
	srv, err := dataplane.ServeWhoami(nsB, netip.AddrPortFrom(ipB, dataplane.WhoamiPort))
	if err != nil {
		kn.t.Fatal(err)
	}
	defer srv.Close()
	cctx, cancel := context.WithTimeout(ctx, reachWait)
	defer cancel()
	got, err := dataplane.Whoami(cctx, nsA, ipA, netip.AddrPortFrom(ipB, dataplane.WhoamiPort))
	if err != nil || got != ipA {
		kn.t.Errorf("pod %s → pod %s: seen as %v (%v), want %s", a, b, got, err, ipA)
	} else {
		kn.t.Logf("pod %s (%s, %s) → pod %s (%s, %s): ok, seen as %s", a, ipA, kn.k.ID, b, ipB, peer.k.ID, got)
	}
	inet := dataplane.DefaultInternetAddrs[0]
	ictx, icancel := context.WithTimeout(ctx, reachWait)
	defer icancel()
	got, err = dataplane.Whoami(ictx, nsA, ipA, netip.AddrPortFrom(inet, dataplane.WhoamiPort))
	if err != nil || got != kn.k.PublicIP {
		kn.t.Errorf("pod %s → internet %s: seen as %v (%v), want the node's public %s", a, inet, got, err, kn.k.PublicIP)
	} else {
		kn.t.Logf("pod %s → internet %s: ok, seen as %s (SNAT to the node)", a, inet, got)
	}
}
