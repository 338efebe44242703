package localvpc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// KubeConfig configures the Kubernetes runtime of a local-VPC node:
// containerd (with runc) and kubelet, both inside the node's network and
// mount namespaces (docs/compatibility.md, "The aws-node image and the node
// runtime").
type KubeConfig struct {
	// Containerd and Kubelet are the binaries; Containerd defaults to
	// "containerd" from PATH (Debian's, with its runc shim).
	Containerd string
	Kubelet    string
	// Ctr is containerd's client, used to import Images ("ctr" from PATH).
	Ctr string
	// APIServer is the kube-apiserver's host:port as the driver reaches it
	// (loopback of the machine). The node reaches it through a forwarder.
	APIServer string
	// Token is the bearer token kubelet authenticates with.
	Token string
	// ServiceIP is the ClusterIP of the "kubernetes" Service. Without
	// kube-proxy, the node answers on it itself, forwarding to APIServer, so
	// in-cluster clients (ipamd) work as on a real node.
	ServiceIP netip.Addr
	// PauseImage is the sandbox image; it must be in one of Images.
	PauseImage string
	// Images are OCI archives imported into containerd's k8s.io namespace
	// before kubelet starts: no registry is reachable.
	Images []string
}

// validate checks c once, naming the bad field.
func (c *KubeConfig) validate() error {
	var errs []error
	if c.Containerd == "" {
		c.Containerd = "containerd"
	}
	if c.Ctr == "" {
		c.Ctr = "ctr"
	}
	for _, b := range []struct{ field, path string }{{"Containerd", c.Containerd}, {"Ctr", c.Ctr}, {"Kubelet", c.Kubelet}} {
		if b.path == "" {
			errs = append(errs, fmt.Errorf("KubeConfig.%s: no binary given", b.field))
			continue
		}
		if !strings.Contains(b.path, "/") {
			continue // looked up in PATH when started
		}
		if !isExec(b.path) {
			errs = append(errs, fmt.Errorf("KubeConfig.%s: %s is not an executable file", b.field, b.path))
		}
	}
	if _, _, err := net.SplitHostPort(c.APIServer); err != nil {
		errs = append(errs, fmt.Errorf("KubeConfig.APIServer %q: want host:port: %w", c.APIServer, err))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("KubeConfig.Token: empty"))
	}
	if !c.ServiceIP.Is4() {
		errs = append(errs, fmt.Errorf("KubeConfig.ServiceIP %q: want an IPv4 address", c.ServiceIP))
	}
	if c.PauseImage == "" {
		errs = append(errs, errors.New("KubeConfig.PauseImage: empty"))
	}
	for _, img := range c.Images {
		if _, err := os.Stat(img); err != nil {
			errs = append(errs, fmt.Errorf("KubeConfig.Images: %w", err))
		}
	}
	return errors.Join(errs...)
}

// KubeNodeName is the Kubernetes node name of an instance: EC2's private
// DNS name form, as EKS nodes register.
func KubeNodeName(primaryIP netip.Addr, region string) string {
	return "ip-" + strings.ReplaceAll(primaryIP.String(), ".", "-") + "." + region + ".compute.internal"
}

// containerdConfig renders containerd's config for a node: CRI with runc
// and cgroupfs, the node's CNI directories, and the local pause image.
func containerdConfig(pauseImage string) string {
	return fmt.Sprintf(`version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = 0
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "/run/containerd/containerd.sock"

[ttrpc]
  address = "/run/containerd/containerd.sock.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
`, pauseImage, NodeCNIBinDir, NodeCNIConfDir)
}

// kubeletConfig renders the KubeletConfiguration: everything that would
// reach beyond the node is off (kernel sysctls are answered by files
// mounted in the node, see kubeSysctls), pods' cgroups live under
// cgroupRoot, and the node serves only on its own addresses.
func kubeletConfig(nodeIP netip.Addr, cgroupRoot string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: %s
cgroupsPerQOS: true
enforceNodeAllocatable: []
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
resolvConf: ""
localStorageCapacityIsolation: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
fileCheckFrequency: 5s
volumeStatsAggPeriod: 0s
rotateCertificates: false
serverTLSBootstrap: false
`, nodeIP, cgroupRoot)
}

// kubeletKubeconfig points kubelet at the node's end of the API forwarder.
func kubeletKubeconfig(server, token string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: localvpc
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: kubelet
  user: {token: %q}
contexts:
- name: localvpc
  context: {cluster: localvpc, user: kubelet}
current-context: localvpc
`, server, token)
}

// kubeSysctls are the machine-wide (not per network namespace) kernel
// settings kubelet insists on, with the values it wants. The node answers
// them from files bind-mounted over /proc/sys in its own mount namespace, so
// kubelet finds them as it wants and never writes the machine's.
var kubeSysctls = map[string]string{
	"vm/overcommit_memory":      "1",
	"vm/panic_on_oom":           "0",
	"kernel/panic":              "10",
	"kernel/panic_on_oops":      "1",
	"kernel/keys/root_maxkeys":  "1000000",
	"kernel/keys/root_maxbytes": "25000000",
}

// kubeMounts are the node-private directories containerd and kubelet need
// beyond nodeMounts: host-side subdirectory → path inside the node.
var kubeMounts = []struct{ sub, target string }{
	{"kube/containerd", "/var/lib/containerd"},
	{"kube/containerd-state", "/run/containerd"},
	{"kube/kubelet", "/var/lib/kubelet"},
	{"kube/log-pods", "/var/log/pods"},
	{"kube/log-containers", "/var/log/containers"},
	// Pod network namespaces are pinned here; private so they never show
	// in the machine's `ip netns`.
	{"kube/netns", "/run/netns"},
	{"kube/etc", "/etc/kubernetes"},
}
