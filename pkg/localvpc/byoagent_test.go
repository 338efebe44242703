package localvpc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
)

func TestAgentBinariesValidateNamesTheBadPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "ipamd")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		bins AgentBinaries
		want string
	}{
		{AgentBinaries{IPAMD: exe}, "no plugin path"},
		{AgentBinaries{IPAMD: "bin/ipamd", Plugin: exe}, `"bin/ipamd": want an absolute path`},
		{AgentBinaries{IPAMD: exe, Plugin: plain}, plain + `": not an executable`},
		{AgentBinaries{IPAMD: filepath.Join(dir, "missing"), Plugin: exe}, "missing"},
		{AgentBinaries{IPAMD: dir, Plugin: exe}, "not an executable"},
	} {
		err := tc.bins.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.bins, err, tc.want)
		}
	}
	if err := (AgentBinaries{IPAMD: exe, Plugin: exe}).Validate(); err != nil {
		t.Errorf("two executables: %v", err)
	}
}

// Our own ipamd and plugin, given by path as a "bring your own agent" pair,
// make a node network-ready and wire a pod with an address of the node's
// subnet (the plumbing the bench's compare mode uses). The ipamd is
// wrapped to refuse to start, as upstream's does, unless the environment
// names the address family as the DaemonSet manifest does.
func TestPrivilegedBringYourOwnAgentWiresAPod(t *testing.T) {
	v := startVPC(t)
	bins, err := ProjectBinaries(agentbin.Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	strict := filepath.Join(t.TempDir(), "strict-ipamd")
	script := "#!/bin/sh\n[ \"$ENABLE_IPv4\" = true ] && [ \"$ENABLE_IPv6\" = false ] || { echo \"no manifest address family\" >&2; exit 1; }\nexec " + bins.IPAMD + " \"$@\"\n"
	if err := os.WriteFile(strict, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	bins.IPAMD = strict
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := v.Nodes()[0]
	if err := v.StartAgentBinaries(ctx, n, bins, []string{"AWS_MANAGE_ENIS_NON_SCHEDULABLE=true"}); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	if err := v.WaitAgentBinariesReady(ctx, n, nil); err != nil {
		t.Fatalf("agent not ready: %v", err)
	}
	p, err := v.AddPod(ctx, n, "default", "byo-0")
	if err != nil {
		t.Fatalf("add pod: %v", err)
	}
	holder, err := v.Locate(p.IP)
	if err != nil {
		t.Fatalf("pod address %s not held by an ENI of the VPC: %v", p.IP, err)
	}
	t.Logf("pod %s holds %s (%+v)", p.Name, p.IP, holder)
	if _, err := v.DelPod(ctx, p); err != nil {
		t.Fatalf("delete pod: %v", err)
	}
	if err := v.StopAgent(n, syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatalf("stop agent: %v", err)
	}
}
