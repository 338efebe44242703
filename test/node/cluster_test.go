package node

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/vpc-cni/vpc-cni/internal/childproc"
	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
)

// NodeBinEnv names the directory holding kubelet, kube-controller-manager
// and kube-scheduler (scripts/build-kube-node.sh prints it).
const NodeBinEnv = "VPC_CNI_KUBE_NODE_BIN"

// serviceCIDR is the cluster's Service range, outside the local VPC's
// CIDRs as on EKS; its first address is the "kubernetes" Service.
const serviceCIDR = "172.20.0.0/16"

var serviceIP = netip.MustParseAddr("172.20.0.1")

// controlPlane is etcd + kube-apiserver (kubeenv) plus the two controllers a
// node's pods need: kube-controller-manager (DaemonSet, service accounts,
// the root CA config map) and kube-scheduler (DaemonSet pods are bound by
// the scheduler).
type controlPlane struct {
	env     *kubeenv.Env
	cs      *kubernetes.Clientset
	nodeBin string
}

func nodeBinaries(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(NodeBinEnv)
	if dir == "" {
		t.Skipf("NODE TIER SKIPPED: %s is unset (scripts/build-kube-node.sh builds kubelet, kube-controller-manager and kube-scheduler and prints their directory; scripts/test.sh sets it)", NodeBinEnv)
	}
	for _, b := range []string{"kubelet", "kube-controller-manager", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Skipf("NODE TIER SKIPPED: %s: %v", NodeBinEnv, err)
		}
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("NODE TIER SKIPPED: %s is not installed (apt-get install containerd runc; scripts/install-deps.sh does)", b)
		}
	}
	return dir
}

func startControlPlane(t *testing.T, ctx context.Context) *controlPlane {
	t.Helper()
	apiserver, etcd, err := kubeenv.Binaries()
	if err != nil {
		t.Skip(err.Error())
	}
	nodeBin := nodeBinaries(t)
	// Pods of a real node need ServiceAccount admission (the controller
	// manager below creates the accounts) and a Service range outside the
	// local VPC's CIDRs.
	env, err := kubeenv.StartProcessesWith(ctx, apiserver, etcd, kubeenv.Options{ServiceCIDR: serviceCIDR, ServiceAccountAdmission: true})
	if err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
	t.Cleanup(env.Stop)
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	cp := &controlPlane{env: env, cs: cs, nodeBin: nodeBin}
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "admin.kubeconfig")
	if err := env.Kubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	cp.start(t, dir, "kube-controller-manager",
		"--kubeconfig="+kubeconfig,
		"--controllers=daemonset-controller,serviceaccount-controller,root-ca-certificate-publisher-controller",
		"--root-ca-file="+filepath.Join(env.Dir, "certs", "apiserver.crt"),
		"--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false")
	cp.start(t, dir, "kube-scheduler", "--kubeconfig="+kubeconfig, "--leader-elect=false", "--secure-port=0")
	// Pods need their namespace's service account and root CA config map.
	for _, ns := range []string{"default", "kube-system"} {
		waitFor(t, ctx, "service account "+ns+"/default and config map kube-root-ca.crt", func() (bool, error) {
			if _, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return false, nil
			} else if err != nil {
				return false, err
			}
			_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		})
	}
	return cp
}

// start runs one control-plane binary from nodeBin until the test ends.
func (cp *controlPlane) start(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(cp.nodeBin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := childproc.Start(cmd); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // by pid: ours
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("%s log tail:\n%s", name, b)
		}
	})
}

// waitFor waits until cond is true or ctx ends (the last error
// cond gave is in the failure).
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, error)) {
	t.Helper()
	limit := 10 * time.Minute // ctx's deadline, if any, comes first
	err := poll.Until(ctx, limit, func() error {
		ok, err := cond()
		switch {
		case ok:
			return nil
		case err != nil:
			return err
		default:
			return errors.New("not yet")
		}
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// apiHostPort is the apiserver's host:port from its URL.
func (cp *controlPlane) apiHostPort() string {
	return strings.TrimPrefix(cp.env.Config.Host, "https://")
}
