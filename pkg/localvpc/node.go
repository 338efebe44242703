package localvpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Paths every node has privately: host-side directory (below Node.Dir) →
// path inside the node's mount namespace.
var nodeMounts = []struct{ sub, target string }{
	{"var/run/aws-node", "/var/run/aws-node"},
	{"etc/cni/net.d", "/etc/cni/net.d"},
	{"opt/cni/bin", "/opt/cni/bin"},
	{"var/log/aws-routed-eni", "/var/log/aws-routed-eni"},
	{"var/lib/cni", "/var/lib/cni"},
	{"run/cni", "/run/cni"},
}

// Paths inside a node.
const (
	NodeCNIBinDir  = "/opt/cni/bin"
	NodeCNIConfDir = "/etc/cni/net.d"
	NodeRunDir     = "/var/run/aws-node"
	NodeLogDir     = "/var/log/aws-routed-eni"
	ConflistName   = "10-aws.conflist"
)

// Node is one instance of the VPC seen as a Kubernetes node: its network
// namespace (from the data plane), a mount namespace held open by an anchor
// process, and the aws-node agent running inside both.
type Node struct {
	ID        string
	Name      string // the instance's Name tag, or its id
	PrimaryIP netip.Addr
	PublicIP  netip.Addr // zero when the instance has none
	NetNS     string     // network namespace path
	Dir       string     // host-side root of the node's private directories

	log   *slog.Logger
	runID string // marks every process started in the node (RunEnv)
	// The anchor is set once by startAnchor, before the Node is published,
	// and never cleared: Exec, SocketPath and AnchorPID read it from any
	// goroutine while another may stop the node, which only sets stopped.
	anchor  *exec.Cmd
	stopped atomic.Bool

	mu    sync.Mutex
	agent *agentProc
}

type agentProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// HostPath maps a path inside the node (one of its private directories) to
// the host-side path of the same file.
func (n *Node) HostPath(inNode string) string {
	for _, m := range nodeMounts {
		if inNode == m.target || strings.HasPrefix(inNode, m.target+"/") {
			return filepath.Join(n.Dir, m.sub, strings.TrimPrefix(inNode, m.target))
		}
	}
	return inNode
}

// startAnchor creates the node's mount namespace: a process that joins the
// node's network namespace, unshares its mount namespace with slave
// propagation (so pod namespaces pinned later under /run/netns show up),
// bind-mounts the private directories and /sys of the node's network
// namespace, and then sleeps. Everything else runs in its namespaces.
func (n *Node) startAnchor(ctx context.Context) error {
	var script strings.Builder
	script.WriteString("set -e\n")
	for _, m := range nodeMounts {
		src := filepath.Join(n.Dir, m.sub)
		if err := os.MkdirAll(src, 0o755); err != nil {
			return fmt.Errorf("node %s: %w", n.ID, err)
		}
		fmt.Fprintf(&script, "mkdir -p %s\nmount --bind %s %s\n", m.target, src, m.target)
	}
	// sysfs mounted from inside the node shows the node's own interfaces.
	script.WriteString("mount -t sysfs sysfs /sys\necho ready\nexec sleep infinity\n")
	cmd := exec.Command("nsenter", "--net="+n.NetNS, "--", "unshare", "--mount", "--propagation", "slave", "--", "/bin/sh", "-c", script.String())
	cmd.Env = withRunMarker(os.Environ(), n.runID)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("node %s anchor: %w", n.ID, err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := startChild(cmd); err != nil {
		return fmt.Errorf("node %s: start mount namespace anchor: %w", n.ID, err)
	}
	n.anchor = cmd
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(10 * time.Second):
		err = errors.New("not ready after 10s")
	}
	if err != nil {
		n.stopAnchor()
		return fmt.Errorf("node %s: mount namespace anchor: %w (stderr: %s)", n.ID, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func (n *Node) stopAnchor() {
	if n.anchor == nil || !n.stopped.CompareAndSwap(false, true) {
		return
	}
	_ = n.anchor.Process.Kill()
	_ = n.anchor.Wait()
}

// Command returns a command that runs argv inside the node's network and
// mount namespaces, with env (nil: ours) plus the run marker (RunEnv) as its
// whole environment and dir (inside the node) as its working directory
// ("" for /).
func (n *Node) Command(ctx context.Context, env []string, dir string, argv ...string) (*exec.Cmd, error) {
	pid := n.AnchorPID()
	if pid == 0 {
		return nil, fmt.Errorf("node %s: not running", n.ID)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("node %s: empty command", n.ID)
	}
	if dir == "" {
		dir = "/"
	}
	args := []string{"--target", fmt.Sprint(pid), "--mount", "--net", "--wd=" + dir, "--"}
	cmd := exec.CommandContext(ctx, "nsenter", append(args, argv...)...)
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = withRunMarker(env, n.runID)
	return cmd, nil
}

// Exec runs argv in the node with stdin and returns its stdout. A failure
// carries the exit error and stdout/stderr for diagnosis. An absolute
// argv[0] (CNI plugins, the floor) is forked straight into the node
// (execInNode); a bare name is looked up in the node's PATH by nsenter.
func (n *Node) Exec(ctx context.Context, env []string, stdin []byte, argv ...string) (stdout, stderr []byte, err error) {
	if len(argv) > 0 && filepath.IsAbs(argv[0]) {
		return n.execInNode(ctx, env, stdin, argv...)
	}
	cmd, err := n.Command(ctx, env, "", argv...)
	if err != nil {
		return nil, nil, err
	}
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &o, &e
	endGroupOnCancel(cmd)
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// startAgent starts argv as the node's agent process. Its output goes to
// <Dir>/agent.log (appended, so restarts keep the history).
func (n *Node) startAgent(ctx context.Context, env []string, dir string, argv ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.agent != nil {
		select {
		case <-n.agent.done:
		default:
			return fmt.Errorf("node %s: agent already running (pid %d)", n.ID, n.agent.cmd.Process.Pid)
		}
	}
	// Not CommandContext: the agent's life is managed by stopAgent.
	cmd, err := n.Command(context.Background(), env, dir, argv...)
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(n.Dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("node %s: agent log: %w", n.ID, err)
	}
	fmt.Fprintf(logf, "---- %s agent start: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := startChild(cmd); err != nil {
		_ = logf.Close()
		return fmt.Errorf("node %s: start agent: %w", n.ID, err)
	}
	p := &agentProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	n.agent = p
	n.log.Info("agent started", "node", n.ID, "pid", cmd.Process.Pid)
	return nil
}

// AgentPID returns the pid of the running agent, or 0.
func (n *Node) AgentPID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.agent == nil {
		return 0
	}
	select {
	case <-n.agent.done:
		return 0
	default:
		return n.agent.cmd.Process.Pid
	}
}

// AgentExited returns a channel closed when the current agent exits, and
// its exit error afterwards.
func (n *Node) AgentExited() (<-chan struct{}, func() error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.agent == nil {
		c := make(chan struct{})
		close(c)
		return c, func() error { return nil }
	}
	p := n.agent
	return p.done, func() error { return p.err }
}

// stopAgent signals the agent's whole process group and waits up to grace
// for it to exit before killing it.
func (n *Node) stopAgent(sig syscall.Signal, grace time.Duration) error {
	n.mu.Lock()
	p := n.agent
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("node %s: signal agent %d: %w", n.ID, pid, err)
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
	n.log.Info("agent stopped", "node", n.ID, "pid", pid, "signal", sig.String())
	return nil
}

// close stops the agent and the anchor; the mount namespace goes with them.
func (n *Node) close() error {
	err := n.stopAgent(syscall.SIGTERM, 5*time.Second)
	n.stopAnchor()
	return err
}

// AnchorPID is the pid of the process holding the node's mount namespace:
// `nsenter --target <pid> --mount --net` enters the node.
// 0 before the node started and once it is stopped.
func (n *Node) AnchorPID() int {
	if n.anchor == nil || n.stopped.Load() {
		return 0
	}
	return n.anchor.Process.Pid
}
