package resourcecontroller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// The Kubernetes tier: one real kube-apiserver + etcd for the package.
func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }

var harnesses atomic.Int64

var crds struct {
	sync.Once
	err error
}

// kubeAdmin returns the shared API server (CRDs from misc/ applied) and an
// admin client that knows the controller's kinds and webhook configs.
func kubeAdmin(t testing.TB) (*kubeenv.Env, client.Client) {
	t.Helper()
	env := kubeenv.Shared(t)
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	if err := admissionregistrationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	crds.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var paths []string
		for _, f := range []string{"crd-cninode.yaml", "crd-eniconfig.yaml", "crd-securitygrouppolicy.yaml"} {
			paths = append(paths, filepath.Join("..", "..", "misc", f))
		}
		crds.err = env.Apply(ctx, paths...)
	})
	if crds.err != nil {
		t.Fatalf("CRDs from misc/: %v", crds.err)
	}
	return env, admin
}

// harness is one running controller with its webhook registered on the
// API server for one test namespace.
type harness struct {
	t     testing.TB
	env   *kubeenv.Env
	admin client.Client
	ec2   EC2
	ns    string
	cfg   Config
	stop  func()
	// ctrl is the running controller, for tests that check its memory.
	ctrl *Controller
	// leaseNS, when set, runs the manager with leader election, its lease
	// in that namespace.
	leaseNS string
	// as, when set, is the identity the controller talks to the API
	// server with (else env.Config, an admin).
	as *rest.Config
	// earlier are the events in "default" when the harness was made.
	earlier map[types.UID]bool
}

// ours reports whether the event was made since the harness was: node and
// CNINode events live in "default", shared by every test of the package
// process, and an earlier test (or run, with -count) may have used the
// same object name. Creation times have only seconds.
func (h *harness) ours(e corev1.Event) bool { return !h.earlier[e.UID] }

// defaultEvents names the events in "default" now.
func defaultEvents(t testing.TB, admin client.Client) map[types.UID]bool {
	t.Helper()
	var l corev1.EventList
	if err := admin.List(context.Background(), &l, client.InNamespace(metav1.NamespaceDefault)); err != nil {
		t.Fatal(err)
	}
	out := make(map[types.UID]bool, len(l.Items))
	for _, e := range l.Items {
		out[e.UID] = true
	}
	return out
}

// startController runs a controller (manager, webhook over TLS on
// 127.0.0.1, cool-down and GC loops) until the returned stop or the end
// of the test.
func startController(t testing.TB, h *harness) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cert, caPEM, err := GenerateServingCert([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rc := h.env.Config
	if h.as != nil {
		rc = h.as
	}
	mgr, err := NewManager(rc, ManagerOptions{
		WebhookHost: "127.0.0.1", WebhookPort: port, WebhookCert: &cert,
		MetricsAddr: "0", HealthAddr: "0",
		LeaderElection: h.leaseNS != "", LeaderElectionNamespace: h.leaseNS,
		Logger: logr.FromSlogHandler(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.cfg
	cfg.ClusterName = "test"
	if cfg.VPCID == "" {
		cfg.VPCID = simtest.VPCID
	}
	cfg.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := New(cfg, h.ec2)
	if err != nil {
		t.Fatal(err)
	}
	h.ctrl = c
	if err := c.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	h.registerWebhook(port, caPEM)
	// Wait until the webhook serves TLS.
	waitFor(t, 30*time.Second, "the webhook to serve", func() (bool, string) {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	})
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("manager stopped: %v", err)
			}
		})
	}
	t.Cleanup(h.stop)
}

// newHarness makes a namespace and starts a controller on ec2.
func newHarness(t testing.TB, ec2 EC2, cfg Config) *harness {
	return newHarnessLeased(t, ec2, cfg, "")
}

// newHarnessLeased is newHarness with leader election on, its lease in
// leaseNS ("": off).
func newHarnessLeased(t testing.TB, ec2 EC2, cfg Config, leaseNS string) *harness {
	env, admin := kubeAdmin(t)
	ns := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(ns) > 50 {
		ns = ns[:50]
	}
	ns = fmt.Sprintf("%s-%d", ns, harnesses.Add(1)) // a benchmark runs more than once
	ctx := context.Background()
	nso := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"rc-test": ns}}}
	if err := admin.Create(ctx, nso); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, env: env, admin: admin, ec2: ec2, ns: ns, cfg: cfg, leaseNS: leaseNS, earlier: defaultEvents(t, admin)}
	t.Cleanup(h.cleanup)
	startController(t, h)
	return h
}

// registerWebhook points a MutatingWebhookConfiguration for this test's
// namespace at the controller, trusting its CA.
func (h *harness) registerWebhook(port int, caPEM []byte) {
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, WebhookPath)
	cfg := WebhookConfiguration("rc-"+h.ns, url, caPEM, map[string]string{"rc-test": h.ns})
	ctx := context.Background()
	_ = h.admin.Delete(ctx, cfg)
	if err := h.admin.Create(ctx, cfg); err != nil {
		h.t.Fatal(err)
	}
}

// cleanup removes what the test made in the shared API server. It runs
// once the controller has stopped, so a CNINode being deleted keeps the
// controller's finalizer for good: its finalizers are removed here. Left,
// every later test's controller took it for a gone node of its own and,
// after its DeinitDelay, ran that node's cleanup in its own VPC, where the
// same instance ids name its own nodes: a cleanup slot taken and their
// available ENIs deleted.
func (h *harness) cleanup() {
	ctx := context.Background()
	_ = h.admin.Delete(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "rc-" + h.ns}})
	_ = h.admin.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(h.ns), client.GracePeriodSeconds(0))
	var nodes corev1.NodeList
	if err := h.admin.List(ctx, &nodes, client.MatchingLabels{"rc-test": h.ns}); err == nil {
		for i := range nodes.Items {
			_ = h.admin.Delete(ctx, &nodes.Items[i])
			_ = h.admin.Delete(ctx, &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: nodes.Items[i].Name}})
		}
	}
	var cns k8s.CNINodeList
	if err := h.admin.List(ctx, &cns); err != nil {
		return
	}
	for i := range cns.Items {
		cn := &cns.Items[i]
		if cn.DeletionTimestamp == nil || len(cn.Finalizers) == 0 {
			continue
		}
		orig := cn.DeepCopy()
		cn.Finalizers = nil
		_ = h.admin.Patch(ctx, cn, client.MergeFrom(orig))
	}
}

// addNode creates a Node for an instance, as kubelet would register it.
func (h *harness) addNode(name, instanceID string, labels map[string]string) *corev1.Node {
	h.t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/os": "linux", "rc-test": h.ns}},
		Spec: corev1.NodeSpec{ProviderID: "aws:///us-west-2a/" + instanceID}}
	for k, v := range labels {
		n.Labels[k] = v
	}
	if err := h.admin.Create(context.Background(), n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// declareSGP adds the SecurityGroupsForPods feature to the node's CNINode
// once the controller has made it, as ipamd does with ENABLE_POD_ENI.
func (h *harness) declareSGP(node string, extra ...k8s.CNINodeFeature) {
	h.t.Helper()
	cn := &k8s.CNINode{}
	waitFor(h.t, 30*time.Second, "CNINode "+node, func() (bool, string) {
		err := h.admin.Get(context.Background(), client.ObjectKey{Name: node}, cn)
		return err == nil, fmt.Sprint(err)
	})
	if len(cn.OwnerReferences) != 1 || cn.OwnerReferences[0].Kind != "Node" || cn.Spec.Tags[awsutils.TagInstanceID] == "" {
		h.t.Fatalf("CNINode %s: owner %v tags %v, want owned by its Node with the instance tag", node, cn.OwnerReferences, cn.Spec.Tags)
	}
	orig := cn.DeepCopy()
	cn.Spec.Features = append(cn.Spec.Features, k8s.CNINodeFeature{Name: k8s.FeatureSecurityGroupsForPods})
	cn.Spec.Features = append(cn.Spec.Features, extra...)
	if err := h.admin.Patch(context.Background(), cn, client.MergeFrom(orig)); err != nil {
		h.t.Fatal(err)
	}
}

// addSGPNode adds a node of instanceID whose ipamd declared security
// groups for pods, and waits until its trunk is up: it advertises capacity
// pod-eni.
func (h *harness) addSGPNode(name, instanceID string, capacity int64) {
	h.t.Helper()
	h.addNode(name, instanceID, nil)
	h.declareSGP(name)
	h.waitCapacity(name, capacity)
}

// waitCapacity waits until the node advertises want pod-eni.
func (h *harness) waitCapacity(node string, want int64) {
	h.t.Helper()
	waitFor(h.t, 30*time.Second, "pod-eni capacity on "+node, func() (bool, string) {
		var n corev1.Node
		if err := h.admin.Get(context.Background(), client.ObjectKey{Name: node}, &n); err != nil {
			return false, err.Error()
		}
		q, ok := n.Status.Capacity[PodENIResource]
		return ok && q.Value() == want, fmt.Sprint(n.Status.Capacity)
	})
}

// waitNoCapacity waits until the node advertises no pod-eni at all.
// dropSGPFeature takes SecurityGroupsForPods off node's CNINode, as ipamd
// does when ENABLE_POD_ENI is turned off.
func (h *harness) dropSGPFeature(node string) {
	h.t.Helper()
	ctx := context.Background()
	cn := &k8s.CNINode{}
	if err := h.admin.Get(ctx, client.ObjectKey{Name: node}, cn); err != nil {
		h.t.Fatal(err)
	}
	cn.Spec.Features = nil
	if err := h.admin.Update(ctx, cn); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) waitNoCapacity(node string) {
	h.t.Helper()
	waitFor(h.t, 30*time.Second, "no pod-eni capacity on "+node, func() (bool, string) {
		var n corev1.Node
		if err := h.admin.Get(context.Background(), client.ObjectKey{Name: node}, &n); err != nil {
			return false, err.Error()
		}
		_, ok := n.Status.Capacity[PodENIResource]
		return !ok, fmt.Sprint(n.Status.Capacity)
	})
}

// createPod creates a pod bound to node (as the scheduler would).
func (h *harness) createPod(name, node string, labels map[string]string) (*corev1.Pod, error) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns, Labels: labels},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "none"}}}}
	return p, h.admin.Create(context.Background(), p)
}

// waitAnnotation waits for the pod's branch annotation and decodes it.
func (h *harness) waitAnnotation(name string) []BranchENI {
	h.t.Helper()
	var out []BranchENI
	waitFor(h.t, 30*time.Second, "the branch annotation of "+name, func() (bool, string) {
		var p corev1.Pod
		if err := h.admin.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &p); err != nil {
			return false, err.Error()
		}
		raw := p.Annotations[PodENIAnnotation]
		if raw == "" {
			return false, "no annotation"
		}
		var err error
		out, err = DecodeAnnotation(raw)
		if err != nil {
			h.t.Fatalf("pod %s: %v", name, err)
		}
		return true, ""
	})
	return out
}

// waitEvent waits for an event on a pod whose reason and message match.
func (h *harness) waitEvent(pod, reason, substr string) corev1.Event {
	h.t.Helper()
	var found corev1.Event
	waitFor(h.t, 30*time.Second, fmt.Sprintf("event %s %q on %s", reason, substr, pod), func() (bool, string) {
		var l corev1.EventList
		if err := h.admin.List(context.Background(), &l, client.InNamespace(h.ns)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range l.Items {
			if e.InvolvedObject.Name == pod {
				seen = append(seen, e.Reason+": "+e.Message)
				if e.Reason == reason && strings.Contains(e.Message, substr) {
					found = e
					return true, ""
				}
			}
		}
		return false, strings.Join(seen, "; ")
	})
	return found
}

// waitNodeEvents waits until node has n events of reason (node events
// live in "default") and returns their messages, oldest first.
func (h *harness) waitNodeEvents(node, reason string, n int) []string {
	h.t.Helper()
	var msgs []string
	waitFor(h.t, 30*time.Second, fmt.Sprintf("%d %s events on node %s", n, reason, node), func() (bool, string) {
		var l corev1.EventList
		if err := h.admin.List(context.Background(), &l, client.InNamespace(metav1.NamespaceDefault)); err != nil {
			return false, err.Error()
		}
		slices.SortFunc(l.Items, func(a, b corev1.Event) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
		msgs = msgs[:0]
		for _, e := range l.Items {
			if e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == node && e.Reason == reason && h.ours(e) {
				msgs = append(msgs, e.Message)
			}
		}
		return len(msgs) >= n, fmt.Sprint(msgs)
	})
	return msgs
}

func (h *harness) deletePod(name string) {
	h.t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}}
	if err := h.admin.Delete(context.Background(), p, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
		h.t.Fatal(err)
	}
}

// waitFor waits until cond holds, at most timeout; the failure shows the
// last detail cond gave.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	err := poll.Until(context.Background(), timeout, func() error {
		if ok, detail := cond(); !ok {
			return errors.New(detail)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
