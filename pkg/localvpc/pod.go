package localvpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// Pod is a pod sandbox: a network namespace wired by its node's CNI.
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
	// Added is what the CNI ADD that wired the pod cost.
	Added Timing
}

// Timing is what one CNI call cost, measured around libcni as a container
// runtime makes it. Creating and removing the pod's namespace is outside.
type Timing struct {
	// CNI is the wall time of libcni's AddNetworkList, DelNetworkList or
	// GetVersionInfo: every plugin of the chain executed in the node and
	// its output parsed.
	CNI time.Duration
	// Plugins are the plugin executions within CNI, in order.
	Plugins []PluginTime
}

// Exec is how long plugin's executions within the call took together, and
// whether it ran at all.
func (t Timing) Exec(plugin string) (time.Duration, bool) {
	var sum time.Duration
	ran := false
	for _, p := range t.Plugins {
		if p.Plugin == plugin {
			sum, ran = sum+p.Took, true
		}
	}
	return sum, ran
}

// PluginTime is one plugin execution.
type PluginTime struct {
	Plugin string // binary name in the node's /opt/cni/bin
	Took   time.Duration
}

// AddError is a failed CNI ADD with what it cost: a runtime pays for
// failed attempts too.
type AddError struct {
	Pod    string // namespace/name
	Node   string
	Timing Timing
	Err    error
}

func (e *AddError) Error() string {
	return fmt.Sprintf("pod %s on %s: CNI ADD: %v", e.Pod, e.Node, e.Err)
}

func (e *AddError) Unwrap() error { return e.Err }

// AddPod creates a pod sandbox network namespace on n and runs CNI ADD for
// it through the node's conflist. On failure the namespace is removed again
// (after a DEL, as runtimes do, so nothing half-wired stays behind) and the
// error is an *AddError.
func (v *VPC) AddPod(ctx context.Context, n *Node, namespace, name string) (*Pod, error) {
	return v.AddPodAnnotated(ctx, n, namespace, name, nil)
}

// AddPodAnnotated is AddPod for a pod whose sandbox carries annotations,
// as kubelet passes them to the runtime.
func (v *VPC) AddPodAnnotated(ctx context.Context, n *Node, namespace, name string, annotations map[string]string) (*Pod, error) {
	conf, err := n.Conflist()
	if err != nil {
		return nil, err
	}
	cid := newContainerID()
	nsPath, err := dataplane.NewNamedNS(dataplane.RunPrefix(v.RunID) + "pod-" + cid[:12])
	if err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", namespace, name, err)
	}
	p := &Pod{Namespace: namespace, Name: name, ContainerID: cid, Node: n, NetNS: nsPath, Annotations: annotations}
	var res types.Result
	p.Added, err = n.timed(func(c *libcni.CNIConfig) (err error) {
		res, err = c.AddNetworkList(ctx, conf, p.runtimeConf())
		return err
	})
	if err == nil {
		err = p.setResult(res)
	}
	if err != nil {
		if _, derr := n.timed(func(c *libcni.CNIConfig) error {
			return c.DelNetworkList(context.WithoutCancel(ctx), conf, p.runtimeConf())
		}); derr != nil {
			v.log.Debug("DEL after a failed ADD", "pod", namespace+"/"+name, "node", n.Name, "err", derr)
		}
		if nerr := dataplane.DeleteNamedNS(nsPath); nerr != nil {
			err = errors.Join(err, nerr)
		}
		return nil, &AddError{Pod: namespace + "/" + name, Node: n.Name, Timing: p.Added, Err: err}
	}
	v.mu.Lock()
	v.pods[p.ContainerID] = p
	v.mu.Unlock()
	return p, nil
}

func (p *Pod) setResult(res types.Result) error {
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("CNI result: %w", err)
	}
	p.Result = r
	p.IP = podAddr(r) // ipv6.go
	if !p.IP.IsValid() {
		return fmt.Errorf("CNI result has no IP address: %v", r)
	}
	return nil
}

// CNIDel sends one CNI DEL for the pod and keeps its namespace (runtimes
// may send DEL more than once). The Timing is returned on failure too.
func (v *VPC) CNIDel(ctx context.Context, p *Pod) (Timing, error) {
	conf, err := p.Node.Conflist()
	if err != nil {
		return Timing{}, err
	}
	t, err := p.Node.timed(func(c *libcni.CNIConfig) error {
		return c.DelNetworkList(ctx, conf, p.runtimeConf())
	})
	if err != nil {
		return t, fmt.Errorf("pod %s/%s on %s: CNI DEL: %w", p.Namespace, p.Name, p.Node.Name, err)
	}
	return t, nil
}

// DelPod runs CNI DEL for the pod and removes its network namespace; the
// Timing is the DEL's.
func (v *VPC) DelPod(ctx context.Context, p *Pod) (Timing, error) {
	t, err := v.CNIDel(ctx, p)
	if nerr := dataplane.DeleteNamedNS(p.NetNS); nerr != nil && !errors.Is(nerr, os.ErrNotExist) {
		err = errors.Join(err, nerr)
	}
	v.mu.Lock()
	delete(v.pods, p.ContainerID)
	v.mu.Unlock()
	return t, err
}

// CNIVersion runs CNI VERSION of plugin on n through the same exec path
// as ADD and DEL: the plugin's start-up cost alone.
func (v *VPC) CNIVersion(ctx context.Context, n *Node, plugin string) (Timing, error) {
	t, err := n.timed(func(c *libcni.CNIConfig) error {
		_, err := c.GetVersionInfo(ctx, plugin)
		return err
	})
	if err != nil {
		return t, fmt.Errorf("%s VERSION on %s: %w", plugin, n.Name, err)
	}
	return t, nil
}

// Pods returns the pods that exist, by node then address.
func (v *VPC) Pods() []*Pod {
	v.mu.Lock()
	out := make([]*Pod, 0, len(v.pods))
	for _, p := range v.pods {
		out = append(out, p)
	}
	v.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Node.ID != out[j].Node.ID {
			return out[i].Node.ID < out[j].Node.ID
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out
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

// newContainerID is a random 64-hex sandbox id, like a runtime's.
func newContainerID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
