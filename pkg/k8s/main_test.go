package k8s

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
)

// The Kubernetes tier: one real kube-apiserver + etcd for this package.
func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }

var crdsOnce struct {
	sync.Once
	err error
}

// testEnv returns the shared API server with the CRDs from misc/ applied,
// and an admin client whose scheme knows our types.
func testEnv(t *testing.T) (*kubeenv.Env, client.Client) {
	t.Helper()
	env := kubeenv.Shared(t)
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	crdsOnce.Do(func() {
		crdsOnce.err = applyManifests(env, "crd-eniconfig.yaml", "crd-cninode.yaml")
		if crdsOnce.err == nil {
			crdsOnce.err = waitCRDsServed(admin)
		}
	})
	if crdsOnce.err != nil {
		t.Fatalf("CRDs from misc/: %v", crdsOnce.err)
	}
	return env, admin
}

func miscPath(name string) string { return filepath.Join("..", "..", "misc", name) }

// applyManifests creates every object of the named misc/ files (existing
// objects are left as they are).
func applyManifests(env *kubeenv.Env, files ...string) error {
	var paths []string
	for _, f := range files {
		paths = append(paths, miscPath(f))
	}
	return env.Apply(context.Background(), paths...)
}

func waitCRDsServed(c client.Client) error {
	ctx := context.Background()
	return poll.Until(ctx, 30*time.Second, func() error {
		return errors.Join(c.List(ctx, &eniconfig.ENIConfigList{}), c.List(ctx, &CNINodeList{}))
	})
}

// newClient starts a Client for node with admin credentials (or cfg.RESTConfig
// when set) and stops it when the test ends.
func newClient(t *testing.T, env *kubeenv.Env, cfg Config) *Client {
	t.Helper()
	if cfg.RESTConfig == nil {
		cfg.RESTConfig = env.Config
	}
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start client: %v", err)
	}
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func createNode(t *testing.T, c client.Client, name string, labels, annotations map[string]string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
	if err := c.Create(context.Background(), n); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), n) }) // shared server: keep it tidy
	return n
}

func newPod(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
}

func createPod(t *testing.T, c client.Client, ns, name, node string) *corev1.Pod {
	t.Helper()
	p := newPod(ns, name, node)
	if err := c.Create(context.Background(), p); err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), p, client.GracePeriodSeconds(0)) })
	return p
}

func createENIConfig(t *testing.T, c client.Client, name, subnet string, sgs ...string) {
	t.Helper()
	ec := &eniconfig.ENIConfig{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: eniconfig.Spec{Subnet: subnet, SecurityGroups: sgs}}
	if err := c.Create(context.Background(), ec); err != nil {
		t.Fatalf("create ENIConfig %s: %v", name, err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), ec) })
}

// eventually waits until f succeeds (watch propagation), at most 20 s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	if err := poll.Until(context.Background(), 20*time.Second, f); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func setPodCapacity(t *testing.T, c client.Client, node *corev1.Node, pods int64) {
	t.Helper()
	node.Status.Capacity = corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(pods, resource.DecimalSI)}
	if err := c.Status().Update(context.Background(), node); err != nil {
		t.Fatalf("set node capacity: %v", err)
	}
}

func keyOf(name string) client.ObjectKey { return client.ObjectKey{Name: name} }
