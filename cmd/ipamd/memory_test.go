package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeadmin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// memPods is the pod count of issue 15's memory figure (a node's max pods
// with prefix delegation).
const memPods = 110

// memAnonGoalKB is issue 15's goal for ipamd's anonymous RSS at memPods.
const memAnonGoalKB = 12 * 1024

// memBinEnv names an ipamd binary to measure (e.g. bin/ipamd of an
// earlier make build, to compare) instead of one built as make build does.
const memBinEnv = "VPC_CNI_MEM_IPAMD"

// memEnvEnv adds environment to ipamd's (space-separated K=V), e.g. to
// compare GOGC settings.
const memEnvEnv = "VPC_CNI_MEM_ENV"

// TestProcessMemoryAt110Pods runs ipamd with 110 pods assigned, without and
// (Kubernetes tier) with an API server holding those 110 pods on its node,
// and reports its anonymous and file-backed RSS. The figures are logged;
// the goal (anonymous RSS ≤ 12 MB) is judged by the bench, and only twice
// it fails here.
func TestProcessMemoryAt110Pods(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	t.Run("without-apiserver", func(t *testing.T) { measureMemory(t, false) })
	t.Run("with-apiserver", func(t *testing.T) { measureMemory(t, true) })
}

func measureMemory(t *testing.T, withKube bool) {
	var extra []string
	const node = "node-mem"
	if withKube {
		kenv := kubeenv.Start(t) // skips without the Kubernetes tier
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin := kubeadmin.Client(ctx, t, kenv, filepath.Join("..", ".."))
		if err := admin.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
			t.Fatal(err)
		}
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "mem"}}); err != nil {
			t.Fatal(err)
		}
		for i := range memPods {
			if err := admin.Create(ctx, memPod(i, node)); err != nil {
				t.Fatal(err)
			}
		}
		kc := filepath.Join(t.TempDir(), "kubeconfig")
		if err := kenv.Kubeconfig(kc); err != nil {
			t.Fatal(err)
		}
		extra = append(extra, "KUBECONFIG="+kc, "MY_NODE_NAME="+node)
	}
	env := simtest.Start(t, simtest.Basic())
	d := simDaemon(t, env, append(extra, "ENABLE_PREFIX_DELEGATION=true", "WARM_PREFIX_TARGET=1", "VPC_CNI_MAX_PODS=110",
		"DISABLE_METRICS=true", "DISABLE_INTROSPECTION=true", "AWS_VPC_K8S_CNI_LOGLEVEL=info")...)
	d.bin = shippedIpamd(t)
	d.env = append(d.env, strings.Fields(os.Getenv(memEnvEnv))...)
	d.start()
	if withKube {
		if _, err := d.logAttr("kubernetes caches synced", "node", 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := grpc.NewClient("unix://"+filepath.Join(d.dir, "ipamd.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cni := rpc.NewCNIBackendClient(conn)
	for i := range memPods {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r, err := cni.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", IfName: "eth0",
			ContainerId: fmt.Sprintf("c%04d", i), K8SPodNamespace: "mem", K8SPodName: fmt.Sprintf("pod-%03d", i),
			K8SPodInfraContainerId: fmt.Sprintf("c%04d", i), Netns: "/var/run/netns/x"}, grpc.WaitForReady(true))
		cancel()
		if err != nil || !r.GetSuccess() {
			t.Fatalf("ADD %d: %v %v\n%s", i, r, err, d.log(d.runs))
		}
	}
	st := procStatus(t, d.cmd.Process.Pid)
	t.Logf("ipamd at %d pods (apiserver %v, binary %d bytes): VmRSS %d kB = RssAnon %d kB + RssFile %d kB + RssShmem %d kB; VmHWM %d kB",
		memPods, withKube, fileSize(d.bin), st["VmRSS"], st["RssAnon"], st["RssFile"], st["RssShmem"], st["VmHWM"])
	// Not the goal (12 MB, judged by the bench) but a guard against what
	// doubled it: a cache holding whole objects, a cluster-wide informer.
	if st["RssAnon"] > 2*memAnonGoalKB {
		t.Errorf("anonymous RSS %d kB at %d pods, more than twice the %d kB goal", st["RssAnon"], memPods, memAnonGoalKB)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}

// shippedIpamd is the binary to measure: $VPC_CNI_MEM_IPAMD, or ipamd
// built with the Makefile's flags (static, grpcnotrace, stripped), which
// is what a node runs: file-backed RSS follows the binary.
func shippedIpamd(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv(memBinEnv); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "ipamd")
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "grpcnotrace", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ipamd as make build does: %v\n%s", err, out)
	}
	return bin
}

// memPod is a pod as a DaemonSet-less workload looks: labels, annotations,
// two containers with env, ports, probes and resources.
func memPod(i int, node string) *corev1.Pod {
	c := func(name string) corev1.Container {
		return corev1.Container{
			Name: name, Image: "registry.example.com/team/" + name + ":v1.2.3",
			Args:  []string{"--listen=:8080", "--log-level=info", "--config=/etc/app/config.yaml"},
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
			Env: []corev1.EnvVar{{Name: "POD_NAME", Value: fmt.Sprintf("pod-%03d", i)}, {Name: "REGION", Value: "us-west-2"},
				{Name: "FEATURE_FLAGS", Value: "a,b,c,d"}},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/bin/ready"}}}},
			VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}},
		}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "mem", Name: fmt.Sprintf("pod-%03d", i),
			Labels:      map[string]string{"app": "mem", "tier": "backend", "pod-template-hash": "5d8f7c9b6"},
			Annotations: map[string]string{"example.com/revision": strconv.Itoa(i), "example.com/owner": "team-a"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{c("app"), c("sidecar")},
			Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"}}}}}},
	}
}

// procStatus reads the kB fields of /proc/<pid>/status.
func procStatus(t *testing.T, pid int) map[string]int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			out[k], _ = strconv.Atoi(f[0]) // the kernel writes integers
		}
	}
	return out
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return -1
	}
	return st.Size()
}
