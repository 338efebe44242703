package localvpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vpc-cni/vpc-cni/pkg/conflist"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// Binaries the agent needs, in Config.BinDir.
const (
	InstallerBin = "aws-vpc-cni" // the entrypoint: installs the plugin, runs ipamd, writes the conflist
	IPAMDBin     = "ipamd"
	PluginBin    = "aws-cni"
	EgressBin    = "egress-cni"
)

// AgentMode says how the node agent is run.
type AgentMode string

const (
	// ModeInstaller runs aws-vpc-cni as upstream's aws-node container does.
	ModeInstaller AgentMode = "installer"
	// ModeIPAMD runs ipamd alone; localvpc installs the plugin and renders
	// the conflist itself once ipamd is healthy (used while no installer
	// binary is built).
	ModeIPAMD AgentMode = "ipamd"
)

// AgentMode reports which mode StartAgent will use with the binaries in
// Config.BinDir.
func (v *VPC) AgentMode() (AgentMode, error) {
	if err := CheckBinDir(v.cfg.BinDir); err != nil {
		return "", err
	}
	if isExec(filepath.Join(v.cfg.BinDir, InstallerBin)) {
		return ModeInstaller, nil
	}
	return ModeIPAMD, nil
}

// CheckBinDir says whether dir holds the binaries an agent needs, so a
// caller can refuse a wrong directory before it creates anything.
func CheckBinDir(dir string) error {
	if dir == "" {
		return errors.New("no bin directory configured: run `make build` and pass bin/")
	}
	for _, b := range []string{IPAMDBin, PluginBin} {
		if !isExec(filepath.Join(dir, b)) {
			return fmt.Errorf("%s: no %s binary (run `make build`)", dir, b)
		}
	}
	return nil
}

func isExec(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// agentEnv is the aws-node container's environment on this node: IMDS and
// EC2 through the node's eth0, the node's private paths, the address
// family the DaemonSet manifest sets (an upstream ipamd's code default is
// neither family, and it refuses to start; docs/compatibility.md), then
// extra (later entries win, as in a DaemonSet's env list).
func (v *VPC) agentEnv(n *Node, extra []string) []string {
	env := []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"AWS_REGION=" + v.Region,
		"AWS_DEFAULT_REGION=" + v.Region,
		"AWS_ACCESS_KEY_ID=AKIDLOCALVPC",
		"AWS_SECRET_ACCESS_KEY=localvpc",
		"AWS_EC2_ENDPOINT=http://" + dataplane.EC2Addr.String(),
		"AWS_ENDPOINT_URL_EC2=http://" + dataplane.EC2Addr.String(),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=http://" + dataplane.IMDSAddr.String(),
		"CLUSTER_NAME=localvpc",
		"HOST_CNI_BIN_PATH=" + NodeCNIBinDir,
		"HOST_CNI_CONFDIR_PATH=" + NodeCNIConfDir,
		"AWS_VPC_K8S_CNI_LOG_FILE=" + NodeLogDir + "/ipamd.log",
		"AWS_VPC_K8S_PLUGIN_LOG_FILE=" + NodeLogDir + "/plugin.log",
		"AWS_VPC_K8S_CNI_LOGLEVEL=DEBUG",
		"AWS_VPC_K8S_PLUGIN_LOG_LEVEL=DEBUG",
		"DISABLE_METRICS=true",
		"ENABLE_IPv4=true",
		"ENABLE_IPv6=false",
	}
	return append(env, extra...)
}

// StartAgent starts the aws-node agent on n with extra environment.
func (v *VPC) StartAgent(ctx context.Context, n *Node, extraEnv []string) error {
	mode, err := v.AgentMode()
	if err != nil {
		return err
	}
	env := v.agentEnv(n, extraEnv)
	switch mode {
	case ModeInstaller:
		// As in the image: the entrypoint installs the plugins found next
		// to it and then execs ipamd, which writes the conflist once it
		// serves (docs/compatibility.md, "Entrypoint and init container").
		return n.startAgent(ctx, env, v.cfg.BinDir, filepath.Join(v.cfg.BinDir, InstallerBin),
			"-ipamd", filepath.Join(v.cfg.BinDir, IPAMDBin), "-plugin-dir", v.cfg.BinDir)
	default:
		if err := copyFile(filepath.Join(v.cfg.BinDir, PluginBin), filepath.Join(n.HostPath(NodeCNIBinDir), PluginBin)); err != nil {
			return fmt.Errorf("node %s: install plugin: %w", n.ID, err)
		}
		return n.startAgent(ctx, env, "", filepath.Join(v.cfg.BinDir, IPAMDBin))
	}
}

// WaitReady waits until n is network-ready as kubelet sees it: the conflist
// is in the node's /etc/cni/net.d (written by the installer, or by localvpc
// in ModeIPAMD once ipamd answers its health check). progress is called
// about once a second while waiting.
func (v *VPC) WaitReady(ctx context.Context, n *Node, progress func(waited time.Duration)) error {
	mode, err := v.AgentMode()
	if err != nil {
		return err
	}
	return v.waitReady(ctx, n, mode, progress)
}

func (v *VPC) waitReady(ctx context.Context, n *Node, mode AgentMode, progress func(waited time.Duration)) error {
	confPath := n.HostPath(filepath.Join(NodeCNIConfDir, ConflistName))
	sock := n.SocketPath()
	exited, exitErr := n.AgentExited()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastReport := start
	for {
		switch mode {
		case ModeInstaller:
			if _, err := os.Stat(confPath); err == nil && v.healthy(ctx, sock) {
				return nil
			}
		default:
			if v.healthy(ctx, sock) {
				return v.writeConflist(n)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: agent not ready after %s: %w (see %s)", n.Name, time.Since(start).Round(time.Second), ctx.Err(), n.LogHint())
		case <-exited:
			err := fmt.Errorf("node %s: agent exited before it was ready: %v (see %s)", n.Name, exitErr(), n.LogHint())
			if tail := n.agentLogTail(5); tail != "" {
				err = fmt.Errorf("%w; its log ends:\n    %s", err, tail)
			}
			return err
		case <-tick.C:
		}
		if progress != nil && time.Since(lastReport) >= time.Second {
			lastReport = time.Now()
			progress(time.Since(start))
		}
	}
}

// LogHint names the node's log files for error messages.
func (n *Node) LogHint() string {
	return filepath.Join(n.Dir, "agent.log") + " and " + n.HostPath(NodeLogDir)
}

// healthy asks ipamd's grpc.health.v1 service, through the node's socket.
func (v *VPC) healthy(ctx context.Context, sock string) bool {
	if _, err := os.Stat(sock); err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}

// writeConflist renders the conflist as the installer would (without the
// egress plugin, which needs a binary this mode does not install).
func (v *VPC) writeConflist(n *Node) error {
	data, err := conflist.Render(conflist.Config{
		VethPrefix: hostcontract.VethPrefix, MTU: 9001, PodSGEnforcingMode: "strict",
		PluginLogFile: NodeLogDir + "/plugin.log", PluginLogLevel: "DEBUG",
	})
	if err != nil {
		return fmt.Errorf("node %s: render conflist: %w", n.ID, err)
	}
	dst := n.HostPath(filepath.Join(NodeCNIConfDir, ConflistName))
	if err := os.WriteFile(dst+".tmp", data, 0o644); err != nil {
		return fmt.Errorf("node %s: write conflist: %w", n.ID, err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		return fmt.Errorf("node %s: write conflist: %w", n.ID, err)
	}
	return nil
}

// StartAgents starts every node's agent and waits until all are ready.
func (v *VPC) StartAgents(ctx context.Context, extraEnv []string, progress func(n *Node, waited time.Duration)) error {
	for _, n := range v.Nodes() {
		if err := v.StartAgent(ctx, n, extraEnv); err != nil {
			return err
		}
	}
	for _, n := range v.Nodes() {
		var p func(time.Duration)
		if progress != nil {
			p = func(d time.Duration) { progress(n, d) }
		}
		if err := v.WaitReady(ctx, n, p); err != nil {
			return err
		}
	}
	return nil
}

// StopAgent signals the whole process group of n's agent (like a container
// runtime stopping the aws-node container) and waits up to grace for it to
// exit before killing it.
func (v *VPC) StopAgent(n *Node, sig syscall.Signal, grace time.Duration) error {
	return n.stopAgent(sig, grace)
}

// RestartAgent stops n's agent with sig (SIGTERM drains; SIGKILL is a
// crash), starts it again with the same environment and waits until ready.
func (v *VPC) RestartAgent(ctx context.Context, n *Node, sig syscall.Signal, extraEnv []string) error {
	if err := v.StopAgent(n, sig, 10*time.Second); err != nil {
		return err
	}
	if err := v.StartAgent(ctx, n, extraEnv); err != nil {
		return err
	}
	return v.WaitReady(ctx, n, nil)
}

// SocketPath is a host-side path to n's ipamd socket. It goes through the
// anchor's /proc root: the host-side directory can be longer than the 108
// bytes a unix socket address may have.
func (n *Node) SocketPath() string {
	pid := n.AnchorPID()
	if pid == 0 {
		return n.HostPath(filepath.Join(NodeRunDir, "ipamd.sock"))
	}
	// An absolute symlink on the way (/var/run -> /run) would resolve
	// against our own root, so resolve the directory first.
	dir := NodeRunDir
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	return fmt.Sprintf("/proc/%d/root%s/ipamd.sock", pid, dir)
}
