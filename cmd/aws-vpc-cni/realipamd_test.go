package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestEntrypointLeavesOnlyIpamd runs the entrypoint with the real ipamd
// against vpcsim: once the node is ready (the conflist is there) the
// container's only process is ipamd, in the entrypoint's place, and
// SIGTERM stops it cleanly.
func TestEntrypointLeavesOnlyIpamd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs ipamd")
	}
	sim := simtest.Start(t, simtest.Basic())
	h := newHarness(t)
	h.opts.ipamd = filepath.Join(h.dir, "aws-k8s-agent")
	if out, err := exec.Command("go", "build", "-o", h.opts.ipamd, "../ipamd").CombinedOutput(); err != nil {
		t.Fatalf("go build ipamd: %v\n%s", err, out)
	}
	delete(h.env, fakeIpamdDir)
	for k, v := range map[string]string{
		"AWS_EC2_ENDPOINT":                  sim.EC2URL,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": sim.IMDSURL(simtest.InstanceID),
		"AWS_ACCESS_KEY_ID":                 "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":             "secret",
		"VPC_CNI_DISABLE_HOST_NETWORK":      "true",
		"AWS_VPC_K8S_CNI_BACKING_STORE":     filepath.Join(h.dir, "ipam.json"),
		"AWS_VPC_K8S_CNI_LOG_FILE":          "stderr",
		"DISABLE_METRICS":                   "true",
		"DISABLE_INTROSPECTION":             "true",
	} {
		h.env[k] = v
	}
	e := h.start()
	conflistPath := filepath.Join(h.conf, "10-aws.conflist")
	h.waitFile(conflistPath)
	var cl map[string]any
	if b, err := os.ReadFile(conflistPath); err != nil || json.Unmarshal(b, &cl) != nil || cl["name"] != "aws-cni" {
		t.Fatalf("conflist %q (%v)", b, err)
	}

	pid := e.cmd.Process.Pid
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || exe != h.opts.ipamd {
		t.Errorf("the entrypoint's process runs %q (%v), want ipamd %s", exe, err, h.opts.ipamd)
	}
	if kids := childrenOf(t, pid); len(kids) != 0 {
		t.Errorf("ipamd has child processes %v, want none", kids)
	}
	if env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); !bytes.Contains(env, []byte("VPC_CNI_CONFLIST_PATH=")) {
		t.Errorf("ipamd's initial environment lacks the hand-off")
	}

	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := e.exitCode(t); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}

	// A conflist ipamd cannot write: the node would never be ready, so
	// ipamd stops with status 1 (as the entrypoint did when it wrote it).
	h.env["HOST_CNI_CONFDIR_PATH"] = filepath.Join(h.dir, "missing")
	if code := h.start().exitCode(t); code != 1 {
		t.Errorf("exit code %d with an unwritable conflist, want 1", code)
	}
}
