package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/resourcecontroller"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubefwd"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// The SGP tour's cluster plumbing: the API server, the resource controller
// and the Kubernetes objects a kubelet and a scheduler would make.

// startController runs the resource controller in this process against
// the API server and vpcsim's EC2 API (served on loopback), and registers
// its webhook for the tour's namespace. It returns the webhook's URL.
func (d *demo) startController(ctx context.Context, s *sgpTour, log *slog.Logger) (string, error) {
	ec2srv := httptest.NewServer(d.v.Sim.EC2Handler())
	s.stops = append(s.stops, ec2srv.Close)
	ec2, err := awsutils.NewEC2(ctx, awsutils.Config{
		Region: d.v.Region, EC2Endpoint: ec2srv.URL, ClusterName: "demo",
		Credentials: &awsutils.StaticCredentials{AccessKeyID: "AKIDDEMO", SecretAccessKey: "demo"},
		DetachPoll:  awsutils.Backoff{Base: 50 * time.Millisecond, Max: 500 * time.Millisecond},
	}, nil)
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cert, caPEM, err := resourcecontroller.GenerateServingCert([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		return "", err
	}
	mgr, err := resourcecontroller.NewManager(s.kube.Config, resourcecontroller.ManagerOptions{
		WebhookHost: "127.0.0.1", WebhookPort: port, WebhookCert: &cert,
		MetricsAddr: "0", HealthAddr: "0",
		Logger: logr.FromSlogHandler(log.With("component", "vpc-resource-controller").Handler()),
	})
	if err != nil {
		return "", err
	}
	vpcID, err := d.v.VPCID()
	if err != nil {
		return "", err
	}
	rc, err := resourcecontroller.New(resourcecontroller.Config{
		ClusterName: "demo", VPCID: vpcID, Cooldown: sgpCooldown, CooldownTick: 500 * time.Millisecond,
		Log: log.With("component", "vpc-resource-controller"),
	}, ec2)
	if err != nil {
		return "", err
	}
	mctx, cancel := context.WithCancel(context.Background())
	if err := rc.SetupWithManager(mctx, mgr); err != nil {
		cancel()
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	s.stops = append(s.stops, func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			log.Error("controller manager stopped", "err", err)
		}
	})
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, resourcecontroller.WebhookPath)
	cfg := resourcecontroller.WebhookConfiguration("vpc-resource-mutating-webhook", url, caPEM, map[string]string{"sgp-demo": sgpNamespace})
	if err := s.admin.Create(ctx, cfg); err != nil {
		return "", fmt.Errorf("webhook configuration: %w", err)
	}
	err = kubefwd.Eventually(ctx, 30*time.Second, func() error {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return fmt.Errorf("webhook not serving: %w", err)
		}
		return conn.Close()
	})
	return url, err
}

// sgpRegisterNode creates n's Node object (zone, instance type, providerID
// naming its instance, as kubelet registers it on EC2) and its aws-node pod.
func sgpRegisterNode(ctx context.Context, admin client.Client, v *localvpc.VPC, n *localvpc.Node) error {
	inst, err := v.Sim.Instance(n.ID)
	if err != nil {
		return err
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
			"topology.kubernetes.io/zone":      inst.AZ,
			"node.kubernetes.io/instance-type": inst.Type,
			"kubernetes.io/os":                 "linux",
		}},
		Spec: corev1.NodeSpec{ProviderID: fmt.Sprintf("aws:///%s/%s", inst.AZ, inst.ID)},
	}
	if err := admin.Create(ctx, node); err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "aws-node-" + n.Name, Namespace: "kube-system", Labels: map[string]string{"k8s-app": "aws-node"}},
		Spec:       corev1.PodSpec{NodeName: n.Name, HostNetwork: true, Containers: []corev1.Container{{Name: "aws-node", Image: "vpc-cni:local"}}},
	}
	if err := admin.Create(ctx, pod); err != nil {
		return fmt.Errorf("create pod %s: %w", pod.Name, err)
	}
	return nil
}

// sgpCreatePod creates a pod labelled role=role bound to n, as the
// scheduler would; the result is what the API server stored (after the
// webhook).
func sgpCreatePod(ctx context.Context, admin client.Client, n *localvpc.Node, name, role string) (*corev1.Pod, error) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: sgpNamespace, Labels: map[string]string{"role": role}},
		Spec: corev1.PodSpec{NodeName: n.Name, Containers: []corev1.Container{{Name: "c", Image: "none"}}}}
	if err := admin.Create(ctx, p); err != nil {
		return nil, fmt.Errorf("create pod %s: %w", name, err)
	}
	return p, nil
}

// sgpWaitBranch waits for the pod's vpc.amazonaws.com/pod-eni annotation
// and returns its branch.
func sgpWaitBranch(ctx context.Context, admin client.Client, name string) (resourcecontroller.BranchENI, error) {
	var out []resourcecontroller.BranchENI
	err := kubefwd.Eventually(ctx, 60*time.Second, func() error {
		var p corev1.Pod
		if err := admin.Get(ctx, client.ObjectKey{Namespace: sgpNamespace, Name: name}, &p); err != nil {
			return err
		}
		var err error
		out, err = resourcecontroller.PodBranches(&p)
		return err
	})
	if err != nil {
		return resourcecontroller.BranchENI{}, err
	}
	if len(out) != 1 {
		return resourcecontroller.BranchENI{}, fmt.Errorf("pod %s annotation lists %d branches, want 1", name, len(out))
	}
	return out[0], nil
}

// sgpDrops reads GET /sgdrops from vpcsim's admin API, as a user would,
// and returns eni's ingress counter.
func sgpDrops(sim *vpcsim.Sim, eni string) (vpcsim.SGDrop, error) {
	rec := httptest.NewRecorder()
	sim.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/sgdrops", nil))
	if rec.Code != 200 {
		return vpcsim.SGDrop{}, fmt.Errorf("GET /sgdrops: %d %s", rec.Code, rec.Body)
	}
	var all []vpcsim.SGDrop
	if err := json.Unmarshal(rec.Body.Bytes(), &all); err != nil {
		return vpcsim.SGDrop{}, fmt.Errorf("GET /sgdrops: %w", err)
	}
	for _, x := range all {
		if x.ENIID == eni && x.Direction == "ingress" {
			return x, nil
		}
	}
	return vpcsim.SGDrop{ENIID: eni, Direction: "ingress"}, nil
}

// sgpENIAddr is an ENI's primary address.
func sgpENIAddr(v *localvpc.VPC, eni string) (netip.Addr, error) {
	for _, e := range v.Sim.NetworkInterfaces() {
		if e.ID == eni {
			return e.PrimaryIP, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("scenario %s has no ENI %s", sgpScenario, eni)
}

// sgpRefusal is how a connection that should fail ended, for a check line.
func sgpRefusal(got netip.Addr, err error) string {
	var ne net.Error
	switch {
	case err == nil:
		return "connected as " + got.String()
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer: the SYN was dropped"
	}
	return err.Error()
}
