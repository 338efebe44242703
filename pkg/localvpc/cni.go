package localvpc

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// nodeExec runs CNI plugins the way a container runtime on the node would:
// libcni finds them in the node's /opt/cni/bin (through its host-side
// directory) and each one executes inside the node's namespaces. It records
// each exec's wall time; one nodeExec serves one libcni call, whose
// plugins run one after another.
type nodeExec struct {
	n *Node
	version.PluginDecoder
	plugins []PluginTime
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
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if strings.HasPrefix(kv, "CNI_PATH=") {
			kv = "CNI_PATH=" + NodeCNIBinDir // chained IPAM plugins are looked up inside the node
		}
		env = append(env, kv)
	}
	env = append(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	start := time.Now()
	stdout, stderr, err := e.n.Exec(ctx, env, stdin, filepath.Join(NodeCNIBinDir, rel))
	e.plugins = append(e.plugins, PluginTime{Plugin: filepath.Base(rel), Took: time.Since(start)})
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

// Conflist loads the conflist the installer wrote into the node.
func (n *Node) Conflist() (*libcni.NetworkConfigList, error) {
	path := n.HostPath(filepath.Join(NodeCNIConfDir, ConflistName))
	l, err := libcni.ConfListFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("node %s: %s: %w", n.ID, ConflistName, err)
	}
	return l, nil
}

// timed runs one libcni call against the node's plugins and cache and
// returns how long it took, plugin by plugin.
func (n *Node) timed(call func(*libcni.CNIConfig) error) (Timing, error) {
	e := &nodeExec{n: n}
	cni := libcni.NewCNIConfigWithCacheDir([]string{n.HostPath(NodeCNIBinDir)}, filepath.Join(n.Dir, "cni-cache"), e)
	start := time.Now()
	err := call(cni)
	return Timing{CNI: time.Since(start), Plugins: e.plugins}, err
}
