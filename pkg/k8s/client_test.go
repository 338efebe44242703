package k8s

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
)

func TestENIConfigForNodeResolution(t *testing.T) {
	env, admin := testEnv(t)
	const zone = "topology.kubernetes.io/zone"
	createENIConfig(t, admin, "default", "subnet-0000000d", "sg-0000000d")
	createENIConfig(t, admin, "by-label", "subnet-0000000a", "sg-0000000a", "sg-0000000b")
	createENIConfig(t, admin, "by-annotation", "subnet-0000000b")
	createENIConfig(t, admin, "us-west-2c", "subnet-0000000c", "sg-0000000c")
	createENIConfig(t, admin, "external", "subnet-0000000e")

	tests := []struct {
		node        string
		labels      map[string]string
		annotations map[string]string
		sel         eniconfig.Selector
		want        string
		wantSubnet  string
		wantSGs     int
	}{
		{node: "res-label", labels: map[string]string{eniconfig.DefaultKey: "by-label"}, want: "by-label", wantSubnet: "subnet-0000000a", wantSGs: 2},
		{
			node:        "res-annotation",
			labels:      map[string]string{eniconfig.DefaultKey: "by-label"},
			annotations: map[string]string{eniconfig.DefaultKey: "by-annotation"},
			want:        "by-annotation", wantSubnet: "subnet-0000000b",
		},
		{
			node:   "res-zone",
			labels: map[string]string{zone: "us-west-2c", eniconfig.DefaultKey: "by-label"},
			sel:    eniconfig.Selector{LabelKey: zone},
			want:   "us-west-2c", wantSubnet: "subnet-0000000c", wantSGs: 1,
		},
		{
			node:        "res-external",
			labels:      map[string]string{eniconfig.ExternalLabel: "external", zone: "us-west-2c"},
			annotations: map[string]string{eniconfig.DefaultKey: "by-annotation"},
			sel:         eniconfig.Selector{LabelKey: zone},
			want:        "external", wantSubnet: "subnet-0000000e",
		},
		{node: "res-default", want: "default", wantSubnet: "subnet-0000000d", wantSGs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.node, func(t *testing.T) {
			createNode(t, admin, tt.node, tt.labels, tt.annotations)
			c := newClient(t, env, Config{NodeName: tt.node, Features: Features{CustomNetworking: true}, ENIConfigSelector: tt.sel})
			got, err := c.ENIConfigForNode(context.Background())
			if err != nil {
				t.Fatalf("ENIConfigForNode: %v", err)
			}
			if got.Name != tt.want || got.Spec.Subnet != tt.wantSubnet || len(got.Spec.SecurityGroups) != tt.wantSGs {
				t.Errorf("got %s (%s %s) subnet %s sgs %v; want %s subnet %s with %d sgs",
					got.Name, got.Source, got.Key, got.Spec.Subnet, got.Spec.SecurityGroups, tt.want, tt.wantSubnet, tt.wantSGs)
			}
		})
	}
}

// A missing or invalid ENIConfig is an error naming node, ENIConfig and the
// reason, plus a Warning event on the aws-node pod; once fixed, the next call
// succeeds without a restart.
func TestENIConfigMissingThenCreated(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	const node = "missing-eniconfig"
	createNode(t, admin, node, map[string]string{eniconfig.DefaultKey: "later"}, nil)
	awsNode := createPod(t, admin, "kube-system", "aws-node-missing", node)
	c := newClient(t, env, Config{NodeName: node, PodName: awsNode.Name, Features: Features{CustomNetworking: true}})

	_, err := c.ENIConfigForNode(ctx)
	if !errors.Is(err, ErrENIConfigNotFound) {
		t.Fatalf("want ErrENIConfigNotFound, got %v", err)
	}
	for _, s := range []string{node, `"later"`, "label " + eniconfig.DefaultKey} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	// Repeated failures (ipamd retries every cycle) record one event.
	_, _ = c.ENIConfigForNode(ctx)
	evs := eventsFor(t, admin, awsNode, ReasonENIConfigNotFound)
	if len(evs) != 1 {
		t.Fatalf("want 1 %s event on the aws-node pod, got %d", ReasonENIConfigNotFound, len(evs))
	}
	if ev := evs[0]; ev.Type != corev1.EventTypeWarning || ev.Regarding.UID != awsNode.UID || !strings.Contains(ev.Note, `"later"`) {
		t.Errorf("event = %+v", ev)
	}

	createENIConfig(t, admin, "later", "not-a-subnet", "sg-01")
	eventually(t, "invalid ENIConfig reported", func() error {
		_, err := c.ENIConfigForNode(ctx)
		if !errors.Is(err, ErrENIConfigInvalid) {
			return errors.New("not yet invalid: " + errString(err))
		}
		if !strings.Contains(err.Error(), `spec.subnet "not-a-subnet"`) {
			t.Errorf("error %q does not name the bad subnet", err)
		}
		return nil
	})
	if len(eventsFor(t, admin, awsNode, ReasonInvalidENIConfig)) != 1 {
		t.Error("no InvalidENIConfig event")
	}

	var ec eniconfig.ENIConfig
	if err := admin.Get(ctx, client.ObjectKey{Name: "later"}, &ec); err != nil {
		t.Fatal(err)
	}
	ec.Spec.Subnet = "subnet-0123456789abcdef0"
	if err := admin.Update(ctx, &ec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "fixed ENIConfig used", func() error {
		got, err := c.ENIConfigForNode(ctx)
		if err != nil {
			return err
		}
		if got.Spec.Subnet != "subnet-0123456789abcdef0" {
			return errors.New("stale subnet " + got.Spec.Subnet)
		}
		return nil
	})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func eventsFor(t *testing.T, c client.Client, pod *corev1.Pod, reason string) []eventsv1.Event {
	t.Helper()
	var l eventsv1.EventList
	if err := c.List(context.Background(), &l, client.InNamespace(pod.Namespace)); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range l.Items {
		// By UID too: on the shared API server a pod of the same name from
		// an earlier run (go test -count=2) left its events behind.
		if e.Regarding.Name == pod.Name && e.Regarding.UID == pod.UID && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func TestCNINodeFeatures(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	const node = "cninode-features"
	createNode(t, admin, node, nil, nil)
	c := newClient(t, env, Config{NodeName: node, Features: Features{PodENI: true}})

	if err := c.AddCNINodeFeature(ctx, FeatureSecurityGroupsForPods, ""); !errors.Is(err, ErrCNINodeNotFound) {
		t.Fatalf("without a CNINode: want ErrCNINodeNotFound, got %v", err)
	}
	cn := &CNINode{ObjectMeta: metav1.ObjectMeta{Name: node}, Spec: CNINodeSpec{Tags: map[string]string{"owner": "controller"}}}
	if err := admin.Create(ctx, cn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(ctx, cn) })

	get := func() *CNINode {
		t.Helper()
		var got CNINode
		if err := admin.Get(ctx, client.ObjectKey{Name: node}, &got); err != nil {
			t.Fatal(err)
		}
		return &got
	}
	features := func(cn *CNINode) string {
		var s []string
		for _, f := range cn.Spec.Features {
			s = append(s, f.Name+"="+f.Value)
		}
		return strings.Join(s, ",")
	}

	// The cache may not have seen the CNINode yet: the first attempt may
	// still report it missing.
	eventually(t, "declare SecurityGroupsForPods", func() error {
		return c.AddCNINodeFeature(ctx, FeatureSecurityGroupsForPods, "")
	})
	first := get()
	if got := features(first); got != "SecurityGroupsForPods=" {
		t.Fatalf("features = %q", got)
	}
	if first.Spec.Tags["owner"] != "controller" {
		t.Errorf("the controller's tags were lost: %v", first.Spec.Tags)
	}

	// Identical feature: no write at all.
	eventually(t, "cache catches up", func() error {
		obj, err := c.cniNode.get("", node)
		if err != nil {
			return err
		}
		if cached := obj.(*CNINode); cached.ResourceVersion != first.ResourceVersion {
			return errors.New("cache behind")
		}
		return nil
	})
	if err := c.AddCNINodeFeature(ctx, FeatureSecurityGroupsForPods, ""); err != nil {
		t.Fatal(err)
	}
	if rv := get().ResourceVersion; rv != first.ResourceVersion {
		t.Errorf("identical feature rewrote the object: resourceVersion %s → %s", first.ResourceVersion, rv)
	}

	if err := c.AddCNINodeFeature(ctx, FeatureCustomNetworking, "blue"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddCNINodeFeature(ctx, FeatureCustomNetworking, "green"); err != nil {
		t.Fatal(err)
	}
	if got := features(get()); got != "SecurityGroupsForPods=,CustomNetworking=green" {
		t.Fatalf("after replacing CustomNetworking: features = %q", got)
	}

	// Another writer adds a feature between our read and our patch. A plain
	// merge patch of the list would drop it; the optimistic lock makes the
	// patch fail with Conflict, and the retry re-reads and keeps it.
	calls := 0
	c.beforeFeaturePatch = func() {
		calls++
		if calls > 1 {
			return
		}
		other := get()
		other.Spec.Features = append(other.Spec.Features, CNINodeFeature{Name: "OtherWriter", Value: "x"})
		if err := admin.Update(ctx, other); err != nil {
			t.Errorf("concurrent writer: %v", err)
		}
	}
	if err := c.AddCNINodeFeature(ctx, FeatureCustomNetworking, "red"); err != nil {
		t.Fatal(err)
	}
	c.beforeFeaturePatch = nil
	if calls != 2 {
		t.Errorf("patch attempts = %d, want 2 (one conflict, one retry)", calls)
	}
	if got := features(get()); got != "SecurityGroupsForPods=,CustomNetworking=red,OtherWriter=x" {
		t.Fatalf("after conflict: features = %q", got)
	}
}

func TestWithFeature(t *testing.T) {
	in := []CNINodeFeature{{Name: "A", Value: "1"}, {Name: "B"}, {Name: "A", Value: "2"}}
	got, changed := withFeature(in, "A", "1")
	if !changed || len(got) != 2 || got[0] != (CNINodeFeature{Name: "A", Value: "1"}) {
		t.Errorf("duplicate not removed: %v %v", got, changed)
	}
	if _, changed := withFeature(got, "A", "1"); changed {
		t.Error("identical feature reported as a change")
	}
	if got, _ := withFeature(got, "C", "3"); got[2] != (CNINodeFeature{Name: "C", Value: "3"}) {
		t.Errorf("append: %v", got)
	}
}

func TestPodIPAnnotation(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	const node = "annotate-node"
	createNode(t, admin, node, nil, nil)
	pod := createPod(t, admin, "default", "annotated", node)
	c := newClient(t, env, Config{NodeName: node, Features: Features{AnnotatePodIP: true}})

	annotation := func() (string, bool) {
		t.Helper()
		var p corev1.Pod
		if err := admin.Get(ctx, client.ObjectKeyFromObject(pod), &p); err != nil {
			t.Fatal(err)
		}
		v, ok := p.Annotations[PodIPsAnnotation]
		return v, ok
	}

	if err := c.ClearPodIP(ctx, "default", pod.Name, "10.0.0.9"); err != nil {
		t.Fatalf("clear without annotation: %v", err)
	}
	if _, ok := annotation(); ok {
		t.Fatal("clear created the annotation")
	}
	if err := c.AnnotatePodIP(ctx, "default", pod.Name, "10.0.0.9"); err != nil {
		t.Fatal(err)
	}
	if v, _ := annotation(); v != "10.0.0.9" {
		t.Fatalf("annotation = %q", v)
	}
	// A DEL for an older IP must not wipe the current one.
	if err := c.ClearPodIP(ctx, "default", pod.Name, "10.0.0.8"); err != nil {
		t.Fatalf("clear with another IP: %v", err)
	}
	if v, _ := annotation(); v != "10.0.0.9" {
		t.Fatalf("annotation after clearing another IP = %q", v)
	}
	if err := c.ClearPodIP(ctx, "default", pod.Name, "10.0.0.9"); err != nil {
		t.Fatal(err)
	}
	if v, ok := annotation(); !ok || v != "" {
		t.Fatalf("annotation after clear = %q (present %v), want empty", v, ok)
	}
	if err := c.ClearPodIP(ctx, "default", "gone", "10.0.0.9"); err != nil {
		t.Errorf("clear on a deleted pod: %v", err)
	}
	if err := c.AnnotatePodIP(ctx, "default", "gone", "10.0.0.9"); err == nil || !strings.Contains(err.Error(), "default/gone") {
		t.Errorf("annotate a missing pod: want an error naming it, got %v", err)
	}
}

func TestNodeSchedulableAndMaxPods(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	const name = "taints-node"
	node := createNode(t, admin, name, nil, nil)
	c := newClient(t, env, Config{NodeName: name})

	if _, err := c.MaxPods(ctx); err == nil {
		t.Error("MaxPods without capacity: want an error")
	}
	if ok, err := c.NodeSchedulable(ctx); err != nil || !ok {
		t.Fatalf("untainted: schedulable=%v err=%v", ok, err)
	}
	setPodCapacity(t, admin, node, 29)
	eventually(t, "capacity visible", func() error {
		n, err := c.MaxPods(ctx)
		if err != nil {
			return err
		}
		if n != 29 {
			return errors.New("max pods not 29 yet")
		}
		return nil
	})

	var n corev1.Node
	if err := admin.Get(ctx, client.ObjectKey{Name: name}, &n); err != nil {
		t.Fatal(err)
	}
	n.Spec.Taints = []corev1.Taint{
		{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoExecute}, // other effect: ignored
		{Key: "example.com/x", Effect: corev1.TaintEffectNoSchedule},
	}
	if err := admin.Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
	eventually(t, "taints visible", func() error {
		got, err := c.Node(ctx)
		if err != nil || len(got.Spec.Taints) != 2 {
			return errors.New("taints not cached yet")
		}
		return nil
	})
	if ok, _ := c.NodeSchedulable(ctx); !ok {
		t.Error("unrelated taints made the node unschedulable")
	}
	n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule})
	if err := admin.Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unschedulable", func() error {
		ok, err := c.NodeSchedulable(ctx)
		if err != nil {
			return err
		}
		if ok {
			return errors.New("still schedulable")
		}
		return nil
	})
}

func TestWaitForAPIServer(t *testing.T) {
	env, _ := testEnv(t)
	ctx := context.Background()
	quick := APIServerWait{RequestTimeout: time.Second, RequiredInterval: 20 * time.Millisecond, OptionalInterval: 20 * time.Millisecond, OptionalTimeout: 300 * time.Millisecond}

	// The reachable server gets the default bound: on a loaded machine
	// its first answer can take longer than quick's, which only keeps the
	// unreachable cases short.
	reachable := quick
	reachable.OptionalTimeout = 30 * time.Second
	c, err := New(Config{RESTConfig: env.Config, NodeName: "n", APIServerWait: reachable})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WaitForAPIServer(ctx); err != nil {
		t.Fatalf("reachable server: %v", err)
	}

	down := *env.Config
	down.Host = "https://127.0.0.1:1" // nothing listens on port 1
	c, _ = New(Config{RESTConfig: &down, NodeName: "n", APIServerWait: quick})
	if err := c.WaitForAPIServer(ctx); !errors.Is(err, ErrAPIServerUnavailable) {
		t.Errorf("optional, unreachable: want ErrAPIServerUnavailable, got %v", err)
	}

	// A feature needs the server: waits until ctx ends.
	c, _ = New(Config{RESTConfig: &down, NodeName: "n", APIServerWait: quick, Features: Features{CustomNetworking: true}})
	tctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := c.WaitForAPIServer(tctx); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrAPIServerUnavailable) {
		t.Errorf("required, unreachable: want deadline + ErrAPIServerUnavailable, got %v", err)
	}

	// Bad credentials end the wait at once, even when required.
	bad := *env.Config
	bad.BearerToken = "wrong"
	c, _ = New(Config{RESTConfig: &bad, NodeName: "n", APIServerWait: quick, Features: Features{PodENI: true}})
	if err := c.WaitForAPIServer(ctx); err == nil || !strings.Contains(err.Error(), "refused our credentials") {
		t.Errorf("bad token: got %v", err)
	}
}

func TestConfigValidationAndNotStarted(t *testing.T) {
	_, err := New(Config{RESTConfig: nil})
	if err == nil || !strings.Contains(err.Error(), "RESTConfig is nil") || !strings.Contains(err.Error(), "MY_NODE_NAME") {
		t.Fatalf("empty config: want both problems named, got %v", err)
	}
	// New does not contact the server; reads before Start say so.
	c, err := New(Config{RESTConfig: &rest.Config{Host: "https://127.0.0.1:1"}, NodeName: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Node before Start: %v", err)
	}
	if _, err := c.Pods(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Errorf("Pods before Start: %v", err)
	}
}
