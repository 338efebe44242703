package localvpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localkube/forward"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// Where the node's end of the apiserver forwarder listens (inside the node).
var kubeAPILocal = netip.MustParseAddrPort("127.0.0.1:6443")

// KubeNode is a local-VPC node running containerd and kubelet in its own
// network and mount namespaces, registered with a kube-apiserver as Name.
// Its pods are real CRI sandboxes; their networking comes from whatever
// CNI config the node's /etc/cni/net.d holds (the aws-node DaemonSet
// installs ours).
type KubeNode struct {
	*Node
	// Name is the Kubernetes node name (KubeNodeName).
	Name string
	// CgroupRoot is kubelet's cgroup root; every pod's cgroup is below it.
	CgroupRoot string

	cfg        KubeConfig
	proxy      *forward.Forwarder
	containerd *daemon
	kubelet    *daemon
}

// StartKubeNode starts containerd and kubelet in n. The caller must call
// Stop before the VPC is closed. On error everything started is stopped.
func (v *VPC) StartKubeNode(ctx context.Context, n *Node, cfg KubeConfig) (_ *KubeNode, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	k := &KubeNode{
		Node:       n,
		Name:       KubeNodeName(n.PrimaryIP, v.Region),
		CgroupRoot: "/" + dataplane.RunPrefix(v.RunID) + n.ID,
		cfg:        cfg,
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, k.Stop())
		}
	}()
	if err := k.mountPrivate(ctx); err != nil {
		return nil, err
	}
	// As kube-proxy would: the Service IP of the apiserver is local to the
	// node, and the forwarder answers on it.
	if _, stderr, err := n.Exec(ctx, nil, nil, "ip", "addr", "add", cfg.ServiceIP.String()+"/32", "dev", "lo"); err != nil {
		return nil, fmt.Errorf("node %s: service IP %s on lo: %w: %s", n.ID, cfg.ServiceIP, err, stderr)
	}
	k.proxy, err = forward.In(n.NetNS, cfg.APIServer, kubeAPILocal, netip.AddrPortFrom(cfg.ServiceIP, 443))
	if err != nil {
		return nil, err
	}
	etc := filepath.Join(n.Dir, "kube", "etc")
	files := map[string]string{
		"containerd.toml":    containerdConfig(cfg.PauseImage),
		"kubelet.yaml":       kubeletConfig(n.PrimaryIP, k.CgroupRoot),
		"kubelet.kubeconfig": kubeletKubeconfig("https://"+kubeAPILocal.String(), cfg.Token),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(data), 0o600); err != nil {
			return nil, fmt.Errorf("node %s: %w", n.ID, err)
		}
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
	k.containerd, err = startDaemon(n, "containerd", env, cfg.Containerd, "--config", "/etc/kubernetes/containerd.toml")
	if err != nil {
		return nil, err
	}
	if err := k.waitContainerd(ctx); err != nil {
		return nil, err
	}
	for _, img := range cfg.Images {
		if _, stderr, err := n.Exec(ctx, env, nil, cfg.Ctr, "--address", "/run/containerd/containerd.sock", "-n", "k8s.io", "images", "import", img); err != nil {
			return nil, fmt.Errorf("node %s: import image %s: %w: %s", n.ID, img, err, stderr)
		}
	}
	if err := makeCgroupRoot(k.CgroupRoot); err != nil {
		return nil, fmt.Errorf("node %s: %w", n.ID, err)
	}
	k.kubelet, err = startDaemon(n, "kubelet", env, cfg.Kubelet,
		"--config=/etc/kubernetes/kubelet.yaml",
		"--kubeconfig=/etc/kubernetes/kubelet.kubeconfig",
		"--hostname-override="+k.Name,
		"--node-ip="+n.PrimaryIP.String(),
		"--v=2",
	)
	if err != nil {
		return nil, err
	}
	if err := k.waitKubelet(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// mountPrivate gives the node its own containerd and kubelet directories
// and the kernel settings kubelet checks (kubeSysctls), all in the node's
// mount namespace.
func (k *KubeNode) mountPrivate(ctx context.Context) error {
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, m := range kubeMounts {
		src := filepath.Join(k.Dir, m.sub)
		if err := os.MkdirAll(src, 0o755); err != nil {
			return fmt.Errorf("node %s: %w", k.ID, err)
		}
		fmt.Fprintf(&script, "mkdir -p %s\nmount --bind %s %s\n", m.target, src, m.target)
	}
	// The node's /sys is its network namespace's sysfs, without the
	// machine's cgroup mounts below it; kubelet and runc need those. The
	// same hierarchies are mounted again there.
	cg, err := cgroupMountScript()
	if err != nil {
		return fmt.Errorf("node %s: %w", k.ID, err)
	}
	script.WriteString(cg)
	sysDir := filepath.Join(k.Dir, "kube", "sysctl")
	if err := os.MkdirAll(sysDir, 0o755); err != nil {
		return fmt.Errorf("node %s: %w", k.ID, err)
	}
	for key, val := range kubeSysctls {
		f := filepath.Join(sysDir, strings.ReplaceAll(key, "/", "."))
		if err := os.WriteFile(f, []byte(val+"\n"), 0o644); err != nil {
			return fmt.Errorf("node %s: %w", k.ID, err)
		}
		fmt.Fprintf(&script, "mount --bind %s /proc/sys/%s\n", f, key)
	}
	cmd := exec.CommandContext(ctx, "nsenter", "--target", strconv.Itoa(k.AnchorPID()), "--mount", "--", "/bin/sh", "-c", script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("node %s: private mounts: %w: %s", k.ID, err, out)
	}
	return nil
}

func (k *KubeNode) waitContainerd(ctx context.Context) error {
	return k.poll(ctx, k.containerd, 60*time.Second, func() error {
		_, stderr, err := k.Exec(ctx, nil, nil, k.cfg.Ctr, "--address", "/run/containerd/containerd.sock", "version")
		if err != nil {
			return fmt.Errorf("%w: %s", err, stderr)
		}
		return nil
	})
}

// waitKubelet waits for kubelet's healthz inside the node.
func (k *KubeNode) waitKubelet(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := dataplane.InNS(k.NetNS, func() error {
				var d net.Dialer
				var err error
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	defer hc.CloseIdleConnections()
	return k.poll(ctx, k.kubelet, 120*time.Second, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:10248/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	})
}

// poll calls check until it succeeds, d exits, or limit passes.
func (k *KubeNode) poll(ctx context.Context, d *daemon, limit time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		last := check()
		if last == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("node %s: %s exited: %v\n%s", k.ID, d.name, d.err, d.logTail())
		case <-ctx.Done():
			return fmt.Errorf("node %s: %s not ready: %w (last: %v)\n%s", k.ID, d.name, ctx.Err(), last, d.logTail())
		case <-tick.C:
		}
	}
}

// Stop stops kubelet, every container of the node, containerd and its
// shims, and removes the pods' cgroups. The pods' addresses are not
// released (as when a machine is switched off); delete pods through the
// API first for a clean shutdown. Safe to call more than once.
func (k *KubeNode) Stop() error {
	var errs []error
	if k.kubelet != nil {
		errs = append(errs, k.kubelet.stop(10*time.Second))
	}
	errs = append(errs, killCgroupTree(k.CgroupRoot))
	if k.containerd != nil {
		errs = append(errs, k.containerd.stop(10*time.Second))
	}
	// containerd's shims outlive it by design; they are the node's only
	// other processes in its mount namespace besides the anchor.
	if pid := k.AnchorPID(); pid != 0 {
		errs = append(errs, killInMountNS(pid))
	}
	errs = append(errs, removeCgroupTree(k.CgroupRoot))
	if k.proxy != nil {
		errs = append(errs, k.proxy.Close())
		k.proxy = nil
	}
	return errors.Join(errs...)
}

// LogPaths names the node's containerd, kubelet and ipamd logs (ipamd's as
// aws-node writes it on the node).
func (k *KubeNode) LogPaths() []string {
	return []string{filepath.Join(k.Dir, "kube", "containerd.log"), filepath.Join(k.Dir, "kube", "kubelet.log"), k.HostPath(NodeLogDir + "/ipamd.log")}
}

// killInMountNS SIGKILLs every process sharing the mount namespace of
// anchor, except anchor itself.
func killInMountNS(anchor int) error {
	var want syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/mnt", anchor), &want); err != nil {
		return fmt.Errorf("mount namespace of %d: %w", anchor, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("list processes: %w", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == anchor || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(fmt.Sprintf("/proc/%d/ns/mnt", pid), &st) == nil && st.Ino == want.Ino && st.Dev == want.Dev {
			_ = syscall.Kill(pid, syscall.SIGKILL) // it may have exited meanwhile
		}
	}
	return nil
}
