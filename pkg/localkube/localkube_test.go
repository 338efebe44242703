package localkube

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestStartServesAndStops(t *testing.T) {
	env := start(t)
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create configmap: %v", err)
	}
	// A service account token is subject to RBAC: with no bindings, reading
	// config maps is forbidden.
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "nobody"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa, err := env.ServiceAccountConfig(ctx, "default", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	scs := kubernetes.NewForConfigOrDie(sa)
	if _, err := scs.CoreV1().ConfigMaps("default").Get(ctx, "probe", metav1.GetOptions{}); err == nil {
		t.Fatal("service account without bindings read a config map")
	}

	pids := []int{env.etcd.cmd.Process.Pid, env.apiserver.cmd.Process.Pid}
	dir := env.Dir
	env.Stop()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still running after Stop", pid)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("dir %s not removed: %v", dir, err)
	}
}

func TestApplyWaitsForCRDs(t *testing.T) {
	env := start(t)
	if err := env.Apply(context.Background(), "../../misc/crd-eniconfig.yaml"); err != nil {
		t.Fatal(err)
	}
	// Served at once: create an ENIConfig through the dynamic API.
	cs := kubernetes.NewForConfigOrDie(env.Config)
	body := []byte(`{"apiVersion":"crd.k8s.amazonaws.com/v1alpha1","kind":"ENIConfig","metadata":{"name":"a"},"spec":{"subnet":"subnet-01"}}`)
	if err := cs.RESTClient().Post().AbsPath("/apis/crd.k8s.amazonaws.com/v1alpha1/eniconfigs").Body(body).
		SetHeader("Content-Type", "application/json").Do(context.Background()).Error(); err != nil {
		t.Fatalf("create ENIConfig right after Apply: %v", err)
	}
	// Applying again is a no-op, not an error.
	if err := env.Apply(context.Background(), "../../misc/crd-eniconfig.yaml"); err != nil {
		t.Fatal(err)
	}
}

// start runs a pair for t (pkg/testutil/kubeenv.Start, which this package
// cannot import).
func start(t *testing.T) *Env {
	t.Helper()
	apiserver, etcd, err := Binaries()
	if err != nil {
		t.Skip(err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	env, err := StartProcesses(ctx, apiserver, etcd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Stop)
	return env
}
