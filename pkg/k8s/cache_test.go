package k8s

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// With 20 nodes × 10 pods in the cluster, the client of one node holds and
// receives only its own Node and its own 10 pods.
func TestCachesHoldOnlyOwnNode(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	const nodes, podsPerNode = 20, 10
	name := func(i int) string { return fmt.Sprintf("scope-node-%02d", i) }
	for i := range nodes {
		createNode(t, admin, name(i), nil, nil)
		for j := range podsPerNode {
			createPod(t, admin, "default", fmt.Sprintf("scope-%02d-%02d", i, j), name(i))
		}
	}
	self := name(7)
	c := newClient(t, env, Config{NodeName: self, Features: Features{CustomNetworking: true, PodENI: true}})

	// Count every object the informers receive from now on, including the
	// replay of the current state that a new handler gets.
	var podEvents, nodeEvents atomic.Int64
	for i, n := range map[*informer]*atomic.Int64{c.pods: &podEvents, c.node: &nodeEvents} {
		if _, err := i.inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { n.Add(1) },
			UpdateFunc: func(any, any) { n.Add(1) },
		}); err != nil {
			t.Fatal(err)
		}
	}

	pods, err := c.Pods(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != podsPerNode {
		t.Fatalf("cache holds %d pods, want only this node's %d", len(pods), podsPerNode)
	}
	for _, p := range pods {
		if p.Spec.NodeName != self {
			t.Errorf("cached pod %s is on node %s", p.Name, p.Spec.NodeName)
		}
	}
	nl := c.node.list()
	if len(nl) != 1 || nl[0].(*corev1.Node).Name != self {
		t.Fatalf("cache holds %d nodes, want only %s", len(nl), self)
	}
	if _, err := c.Pod(ctx, "default", "scope-03-00"); err == nil {
		t.Error("a pod of another node is readable from the cache")
	}

	// One watch stream delivers events in resourceVersion order: once the
	// pod created second (on this node) arrived, the first (on another
	// node) would have arrived before it if the watch were not filtered.
	createPod(t, admin, "default", "scope-late-other", name(3))
	createPod(t, admin, "default", "scope-late-own", self)
	eventually(t, "own late pod cached", func() error {
		_, err := c.Pod(ctx, "default", "scope-late-own")
		return err
	})
	if _, err := c.Pod(ctx, "default", "scope-late-other"); err == nil {
		t.Error("another node's new pod reached the cache")
	}
	if pods, _ := c.Pods(ctx); len(pods) != podsPerNode+1 {
		t.Errorf("cache holds %d pods, want %d", len(pods), podsPerNode+1)
	}
	if got := podEvents.Load(); got != podsPerNode+1 {
		t.Errorf("pod informer delivered %d events, want %d (own pods only)", got, podsPerNode+1)
	}
	if got := nodeEvents.Load(); got != 1 {
		t.Errorf("node informer delivered %d events, want 1", got)
	}
}

// The caches hold trimmed objects: what ipamd reads (a pod's UID, pod-eni
// annotation and container resources; the node's labels, taints and
// capacity) is there, the bulk of a spec or status is not.
func TestCachesHoldTrimmedObjects(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	const self = "trim-node"
	node := createNode(t, admin, self, map[string]string{"zone": "a"}, nil)
	node.Status.Capacity = corev1.ResourceList{corev1.ResourcePods: resource.MustParse("110")}
	node.Status.Images = []corev1.ContainerImage{{Names: []string{"registry.example.com/big:v1"}, SizeBytes: 1 << 30}}
	if err := admin.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	p := newPod("default", "trim-pod", self)
	p.Annotations = map[string]string{"vpc.amazonaws.com/pod-eni": `[{"eniId":"eni-1"}]`}
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "BIG", Value: "x"}}
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"vpc.amazonaws.com/pod-eni": resource.MustParse("1")}
	p.Spec.Containers[0].Resources.Requests = p.Spec.Containers[0].Resources.Limits
	if err := admin.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), p, client.GracePeriodSeconds(0)) })

	c := newClient(t, env, Config{NodeName: self})
	var got *corev1.Pod
	eventually(t, "pod cached", func() (err error) {
		got, err = c.Pod(ctx, "default", "trim-pod")
		return err
	})
	if got.UID != p.UID || got.Annotations["vpc.amazonaws.com/pod-eni"] == "" || got.Spec.NodeName != self ||
		len(got.Spec.Containers) != 1 || got.Spec.Containers[0].Resources.Limits.Name("vpc.amazonaws.com/pod-eni", resource.DecimalSI).Value() != 1 {
		t.Errorf("cached pod lost what ipamd reads: %+v", got)
	}
	if c0 := got.Spec.Containers[0]; c0.Image != "" || len(c0.Env) != 0 || len(got.ManagedFields) != 0 {
		t.Errorf("cached pod keeps image %q, env %v, %d managed fields", c0.Image, c0.Env, len(got.ManagedFields))
	}
	n, err := c.Node(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if max, err := c.MaxPods(ctx); err != nil || max != 110 || n.Labels["zone"] != "a" {
		t.Errorf("cached node: max pods %d (%v), labels %v", max, err, n.Labels)
	}
	if len(n.Status.Images) != 0 {
		t.Errorf("cached node keeps its %d images", len(n.Status.Images))
	}
}
