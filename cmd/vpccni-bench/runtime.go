package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// podRuntime creates and deletes pods on one node the way a container
// runtime does, and times only the CNI part: libcni's AddNetworkList and
// DelNetworkList, from the exec of the first plugin to the parsed result.
// Creating and removing the pod's network namespace is outside the timing.
//
// localvpc.VPC.AddPod does the same work but does not expose the CNI time
// on its own, so the runtime is rebuilt here from localvpc's exported
// pieces (Node.Exec, Node.Conflist, Node.HostPath). Pod namespaces carry
// the VPC's run prefix, so localvpc's Close removes any left behind.
type podRuntime struct {
	node   *localvpc.Node
	cni    *libcni.CNIConfig
	conf   *libcni.NetworkConfigList
	prefix string
	seq    *atomic.Int64
}

// pod is one pod sandbox created by podRuntime.
type pod struct {
	Name        string
	ContainerID string
	NetNS       string
	IP          netip.Addr
}

func newPodRuntime(v *localvpc.VPC, n *localvpc.Node, seq *atomic.Int64) (*podRuntime, error) {
	conf, err := n.Conflist()
	if err != nil {
		return nil, err
	}
	cache := filepath.Join(n.Dir, "bench-cni-cache")
	return &podRuntime{
		node:   n,
		cni:    libcni.NewCNIConfigWithCacheDir([]string{n.HostPath(localvpc.NodeCNIBinDir)}, cache, &nodeExec{n: n}),
		conf:   conf,
		prefix: dataplane.RunPrefix(v.RunID),
		seq:    seq,
	}, nil
}

func (p *pod) runtimeConf() *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: p.ContainerID,
		NetNS:       p.NetNS,
		IfName:      "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", "bench"},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.ContainerID},
		},
	}
}

// add creates a pod and returns it with the time CNI ADD took. On failure
// the pod is deleted again (as runtimes do) and the ADD time is still
// returned, so failures can be timed too.
func (r *podRuntime) add(ctx context.Context) (*pod, time.Duration, error) {
	cid := newContainerID()
	p := &pod{Name: fmt.Sprintf("pod-%d", r.seq.Add(1)), ContainerID: cid}
	ns, err := dataplane.NewNamedNS(r.prefix + "bench-" + cid[:12])
	if err != nil {
		return nil, 0, fmt.Errorf("pod %s: %w", p.Name, err)
	}
	p.NetNS = ns
	start := time.Now()
	res, err := r.cni.AddNetworkList(ctx, r.conf, p.runtimeConf())
	took := time.Since(start)
	if err != nil {
		_ = r.cni.DelNetworkList(context.WithoutCancel(ctx), r.conf, p.runtimeConf()) // best effort: the ADD error is what matters
		_ = dataplane.DeleteNamedNS(ns)
		return nil, took, fmt.Errorf("pod %s on %s: CNI ADD: %w", p.Name, r.node.Name, err)
	}
	cur, err := current.NewResultFromResult(res)
	if err == nil {
		for _, ipc := range cur.IPs {
			if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok && a.Unmap().Is4() {
				p.IP = a.Unmap()
				break
			}
		}
		if !p.IP.IsValid() {
			err = fmt.Errorf("CNI result has no IPv4 address: %v", cur)
		}
	}
	if err != nil {
		_, _ = r.del(context.WithoutCancel(ctx), p) // best effort: the result error is what matters
		return nil, took, fmt.Errorf("pod %s on %s: %w", p.Name, r.node.Name, err)
	}
	return p, took, nil
}

// del deletes a pod and returns the time CNI DEL took.
func (r *podRuntime) del(ctx context.Context, p *pod) (time.Duration, error) {
	start := time.Now()
	err := r.cni.DelNetworkList(ctx, r.conf, p.runtimeConf())
	took := time.Since(start)
	if nerr := dataplane.DeleteNamedNS(p.NetNS); nerr != nil && err == nil {
		err = nerr
	}
	if err != nil {
		return took, fmt.Errorf("pod %s on %s: CNI DEL: %w", p.Name, r.node.Name, err)
	}
	return took, nil
}

// chain names the conflist's plugins in order.
func (r *podRuntime) chain() string {
	var names []string
	for _, p := range r.conf.Plugins {
		names = append(names, p.Network.Type)
	}
	return strings.Join(names, ", ")
}

// version times one VERSION call of the named plugin through the same
// exec path as ADD and DEL: the plugin's start-up cost alone.
func (r *podRuntime) version(ctx context.Context, plugin string) (time.Duration, error) {
	start := time.Now()
	_, err := r.cni.GetVersionInfo(ctx, plugin)
	took := time.Since(start)
	if err != nil {
		return took, fmt.Errorf("%s VERSION on %s: %w", plugin, r.node.Name, err)
	}
	return took, nil
}

// nodeExec runs plugins inside the node's namespaces from its /opt/cni/bin,
// as a runtime on that node would (the same as localvpc's own runtime).
type nodeExec struct {
	n *localvpc.Node
	version.PluginDecoder
}

var _ invoke.Exec = (*nodeExec)(nil)

func (e *nodeExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (e *nodeExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	hostBin := e.n.HostPath(localvpc.NodeCNIBinDir)
	rel, err := filepath.Rel(hostBin, pluginPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("plugin %s is not in node %s's %s", pluginPath, e.n.ID, localvpc.NodeCNIBinDir)
	}
	env := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if strings.HasPrefix(kv, "CNI_PATH=") {
			kv = "CNI_PATH=" + localvpc.NodeCNIBinDir
		}
		env = append(env, kv)
	}
	env = append(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
	start := time.Now()
	stdout, stderr, err := e.n.Exec(ctx, env, stdin, filepath.Join(localvpc.NodeCNIBinDir, rel))
	recordExec(ctx, filepath.Base(rel), cniCommand(environ), time.Since(start))
	if err != nil {
		var te types.Error
		if len(stdout) > 0 && json.Unmarshal(stdout, &te) == nil && (te.Code != 0 || te.Msg != "") {
			return nil, &te
		}
		return nil, fmt.Errorf("plugin %s failed: %w (stdout %q, stderr %q)", rel, err, stdout, stderr)
	}
	return stdout, nil
}

func cniCommand(environ []string) string {
	for _, kv := range environ {
		if c, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
			return c
		}
	}
	return ""
}

func newContainerID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
