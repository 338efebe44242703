package localvpc

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// AgentBinaries names an aws-node-compatible ipamd and CNI plugin by path:
// "bring your own agent". Any pair that speaks the aws-node contract works
// (ipamd serving grpc.health.v1 and the CNI backend on NodeRunDir's
// ipamd.sock, the plugin installed as aws-cni), e.g. another build of
// upstream's aws-k8s-agent and aws-cni. localvpc never fetches or builds
// them: the caller supplies the files.
type AgentBinaries struct {
	IPAMD  string
	Plugin string
}

// Validate checks that both binaries are executable files, naming the one
// that is not.
func (b AgentBinaries) Validate() error {
	for _, f := range []struct{ name, path string }{{"ipamd", b.IPAMD}, {"plugin", b.Plugin}} {
		if f.path == "" {
			return fmt.Errorf("agent binaries: no %s path given", f.name)
		}
		if !filepath.IsAbs(f.path) {
			return fmt.Errorf("agent binaries: %s %q: want an absolute path", f.name, f.path)
		}
		if !isExec(f.path) {
			return fmt.Errorf("agent binaries: %s %q: not an executable file", f.name, f.path)
		}
	}
	return nil
}

// ProjectBinaries are this project's ipamd and plugin in dir (bin/ after
// `make build`), as AgentBinaries.
func ProjectBinaries(dir string) (AgentBinaries, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return AgentBinaries{}, fmt.Errorf("bin directory %q: %w", dir, err)
	}
	b := AgentBinaries{IPAMD: filepath.Join(abs, IPAMDBin), Plugin: filepath.Join(abs, PluginBin)}
	return b, b.Validate()
}

// StartAgentBinaries starts bins on n as ModeIPAMD runs ours: the plugin is
// installed as aws-cni in the node's CNI bin directory and ipamd runs alone
// with the node's agent environment (the same endpoints and paths as our
// agent) plus extraEnv. An ipamd run without an API server may need
// settings of its own there (upstream's needs
// AWS_MANAGE_ENIS_NON_SCHEDULABLE=true, or it dereferences a nil
// Kubernetes client). Wait with WaitAgentBinariesReady.
func (v *VPC) StartAgentBinaries(ctx context.Context, n *Node, bins AgentBinaries, extraEnv []string) error {
	if err := bins.Validate(); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := copyFile(bins.Plugin, filepath.Join(n.HostPath(NodeCNIBinDir), PluginBin)); err != nil {
		return fmt.Errorf("node %s: install plugin %s: %w", n.Name, bins.Plugin, err)
	}
	return n.startAgent(ctx, v.agentEnv(n, extraEnv), "", bins.IPAMD)
}

// WaitAgentBinariesReady waits until n's ipamd started by
// StartAgentBinaries answers its health check, then writes the conflist as
// the installer would, so the node is network-ready as kubelet sees it.
func (v *VPC) WaitAgentBinariesReady(ctx context.Context, n *Node, progress func(waited time.Duration)) error {
	return v.waitReady(ctx, n, ModeIPAMD, progress)
}
