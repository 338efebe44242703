package localvpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// nodeExec runs CNI plugins the way a container runtime on the node would:
// libcni finds them in the node's /opt/cni/bin (through its host-side
// directory) and each one executes inside the node's namespaces.
type nodeExec struct {
	n *Node
	version.PluginDecoder
}

var _ invoke.Exec = (*nodeExec)(nil)

func (e *nodeExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (e *nodeExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	hostBin := e.n.HostPath(NodeCNIBinDir)
	rel, err := filepath.Rel(hostBin, pluginPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("plugin %s is not in node %s's %s", pluginPath, e.n.ID, NodeCNIBinDir)
	}
	env := make([]string, 0, len(environ))
	for _, kv := range environ {
		if strings.HasPrefix(kv, "CNI_PATH=") {
			kv = "CNI_PATH=" + NodeCNIBinDir // chained IPAM plugins are looked up inside the node
		}
		env = append(env, kv)
	}
	env = append(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	stdout, stderr, err := e.n.Exec(ctx, env, stdin, filepath.Join(NodeCNIBinDir, rel))
	if err != nil {
		return nil, pluginError(err, stdout, stderr)
	}
	return stdout, nil
}

// pluginError turns a failed plugin run into the CNI error it printed.
func pluginError(err error, stdout, stderr []byte) error {
	var te types.Error
	if len(stdout) > 0 && json.Unmarshal(stdout, &te) == nil && (te.Code != 0 || te.Msg != "") {
		return &te
	}
	return fmt.Errorf("plugin failed: %w (stdout %q, stderr %q)", err, stdout, stderr)
}

// Pod is a pod sandbox: a network namespace wired by the node's CNI.
type Pod struct {
	Namespace   string
	Name        string
	ContainerID string
	Node        *Node
	NetNS       string
	IP          netip.Addr
	Result      *current.Result
	// Annotations reach the plugin as the runtime's pod-annotations
	// capability (e.g. the multi-NIC request, multinic.go).
	Annotations map[string]string
}

func (n *Node) cni(cacheDir string) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{n.HostPath(NodeCNIBinDir)}, cacheDir, &nodeExec{n: n})
}

// Conflist loads the conflist the installer wrote into the node.
func (n *Node) Conflist() (*libcni.NetworkConfigList, error) {
	path := n.HostPath(filepath.Join(NodeCNIConfDir, ConflistName))
	l, err := libcni.ConfListFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("node %s: %s: %w", n.ID, ConflistName, err)
	}
	return l, nil
}

func (p *Pod) runtimeConf() *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: p.ContainerID,
		NetNS:       p.NetNS,
		IfName:      "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", p.Namespace},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.ContainerID},
		},
	}
	if p.Annotations != nil {
		rt.CapabilityArgs = map[string]any{"io.kubernetes.cri.pod-annotations": p.Annotations}
	}
	return rt
}

// AddPod creates a pod sandbox network namespace and runs CNI ADD for it
// through the node's conflist. On failure the namespace is removed again
// (after a DEL, as runtimes do, so nothing half-wired stays behind).
func (n *Node) AddPod(ctx context.Context, runPrefix, cacheDir, namespace, name string) (*Pod, error) {
	return n.addPod(ctx, runPrefix, cacheDir, namespace, name, nil)
}

func (n *Node) addPod(ctx context.Context, runPrefix, cacheDir, namespace, name string, annotations map[string]string) (*Pod, error) {
	conf, err := n.Conflist()
	if err != nil {
		return nil, err
	}
	cid := newContainerID()
	nsPath, err := dataplane.NewNamedNS(runPrefix + "pod-" + cid[:12])
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", namespace, name, err)
	}
	p := &Pod{Namespace: namespace, Name: name, ContainerID: cid, Node: n, NetNS: nsPath, Annotations: annotations}
	cni := n.cni(cacheDir)
	res, err := cni.AddNetworkList(ctx, conf, p.runtimeConf())
	if err != nil {
		_ = cni.DelNetworkList(context.WithoutCancel(ctx), conf, p.runtimeConf())
		_ = dataplane.DeleteNamedNS(nsPath)
		return nil, fmt.Errorf("pod %s/%s on %s: CNI ADD: %w", namespace, name, n.Name, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: CNI result: %w", namespace, name, err)
	}
	p.Result = r
	p.IP = podAddr(r) // ipv6.go
	if !p.IP.IsValid() {
		return p, fmt.Errorf("pod %s/%s: CNI result has no IP address: %v", namespace, name, r)
	}
	return p, nil
}

// CNIDel runs CNI DEL for the pod and leaves its namespace (runtimes may
// send DEL more than once).
func (n *Node) CNIDel(ctx context.Context, cacheDir string, p *Pod) error {
	conf, err := n.Conflist()
	if err != nil {
		return err
	}
	if err := n.cni(cacheDir).DelNetworkList(ctx, conf, p.runtimeConf()); err != nil {
		return fmt.Errorf("pod %s/%s: CNI DEL: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// DelPod runs CNI DEL for the pod and removes its network namespace.
func (n *Node) DelPod(ctx context.Context, cacheDir string, p *Pod) error {
	var errs []error
	if err := n.CNIDel(ctx, cacheDir, p); err != nil {
		errs = append(errs, err)
	}
	if err := dataplane.DeleteNamedNS(p.NetNS); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// newContainerID is a random 64-hex sandbox id, like a runtime's.
func newContainerID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
