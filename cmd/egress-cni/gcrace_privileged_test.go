package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedGCLeavesAddInFlight: a CNI GC that runs while an ADD of a
// new sandbox is paused between taking its egress address and installing
// its SNAT (its first iptables run) does not list that sandbox as valid,
// as a runtime could not; the GC still removes the stale pod's wiring but
// leaves the new pod's, and once resumed the ADD succeeds with the new
// pod wired and reaching the internet as the node. The GC used to release
// the new pod's address and delete its host veth: the ADD then succeeded
// with the pod's egress link gone and its address free for the next pod.
func TestPrivilegedGCLeavesAddInFlight(t *testing.T) {
	tp := newTopo(t)
	entry := tp.egressEntry(false, "")
	l := list(t, "1.0.0", loopbackEntry, entry)
	gone := testutil.NewNS(t)
	add(t, tp, l, runtimeConf("ctr-gone", gone.Path()))

	gate := t.TempDir()
	path := pausingIptables(t, gate)
	pod := testutil.NewNS(t)
	done := make(chan error, 1)
	go func() { done <- execQuiet(tp, "ADD", "ctr-new", pod.Path(), path, entry) }()
	waitFile(t, filepath.Join(gate, "paused"), done)

	if out, err := runGC(tp, entry, nil); err != nil {
		t.Errorf("GC during the ADD: %v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(gate, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the paused ADD: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the paused ADD did not finish")
	}

	store := filepath.Join(tp.dataDir, "egress-v4-ipam", "aws-cni")
	held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam"))
	var owners []string
	for _, a := range held {
		b, err := os.ReadFile(filepath.Join(store, a))
		if err != nil {
			t.Fatal(err)
		}
		owners = append(owners, strings.Fields(string(b))[0])
	}
	if !slices.Equal(owners, []string{"ctr-new"}) {
		t.Errorf("after GC and the ADD the store holds %v owned by %v, want the new pod's address only", held, owners)
	}
	node := strings.Join(snapshot(t, tp.node.Path()), "\n")
	if v := egress.HostVethName("ctr-new", "eth0"); !strings.Contains(node, v) {
		t.Errorf("the new pod's host veth %s is gone:\n%s", v, node)
	}
	if v := egress.HostVethName("ctr-gone", "eth0"); strings.Contains(node, v) {
		t.Errorf("the stale pod's host veth %s is left", v)
	}
	nat := strings.Join(tp.nat(t, false), "\n")
	if c := egress.ChainName(egress.V4, "aws-cni", "ctr-gone"); strings.Contains(nat, c) {
		t.Errorf("the stale pod's chain %s is left", c)
	}
	if src, err := seenFrom(pod, tp.internet, internetV4); err != nil || src != nodeV4 {
		t.Errorf("the new pod after GC: seen from %q (%v), want %s", src, err, nodeV4)
	}
}

// pausingIptables returns a PATH whose iptables waits, on its first run,
// until the file go appears in gate, having made the file paused there;
// the other iptables tools are the real ones.
func pausingIptables(t *testing.T, gate string) string {
	t.Helper()
	dir := t.TempDir()
	real, err := exec.LookPath("iptables")
	if err != nil {
		t.Skipf("no iptables: %v", err)
	}
	for _, n := range []string{"iptables-restore", "iptables-save", "ip6tables", "ip6tables-restore", "ip6tables-save"} {
		if p, err := exec.LookPath(n); err == nil {
			if err := os.Symlink(p, filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	script := fmt.Sprintf("#!/bin/sh\nif [ ! -e %[1]s/go ]; then\n  : > %[1]s/paused\n  while [ ! -e %[1]s/go ]; do sleep 0.02; done\nfi\nexec %[2]s \"$@\"\n", gate, real)
	if err := os.WriteFile(filepath.Join(dir, "iptables"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir + ":" + os.Getenv("PATH")
}

// waitFile waits for name to exist, failing if the ADD ends first.
func waitFile(t *testing.T, name string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(name); err == nil {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("the ADD ended before pausing: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the ADD never paused")
		}
	}
}

// execQuiet runs egress-cni as execPlugin does, returning its error
// instead of failing the test (it runs in a goroutine).
func execQuiet(tp *topo, command, id, netns, path, entry string) error {
	var conf map[string]any
	if err := json.Unmarshal([]byte(entry), &conf); err != nil {
		return err
	}
	conf["cniVersion"], conf["name"] = "1.0.0", "aws-cni"
	conf["prevResult"] = map[string]any{"cniVersion": "1.0.0", "interfaces": []map[string]any{{"name": "lo", "sandbox": netns}}}
	stdin, _ := json.Marshal(conf)
	var out bytes.Buffer
	var runErr error
	_ = tp.inNode(func() error {
		cmd := exec.Command(filepath.Join(binDir, "egress-cni"))
		cmd.Env = []string{"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + id, "CNI_NETNS=" + netns, "CNI_IFNAME=eth0", "CNI_PATH=" + refPlugins, "PATH=" + path}
		cmd.Stdin, cmd.Stdout = bytes.NewReader(stdin), &out
		runErr = cmd.Run()
		return nil
	})
	if runErr != nil {
		return fmt.Errorf("%w: %s", runErr, out.String())
	}
	return nil
}

// runGC runs a CNI 1.1 GC of entry's network with the valid attachments
// (container IDs, ifname eth0).
func runGC(tp *topo, entry string, valid []string) (string, error) {
	var conf map[string]any
	if err := json.Unmarshal([]byte(entry), &conf); err != nil {
		return "", err
	}
	conf["cniVersion"], conf["name"] = "1.1.0", "aws-cni"
	atts := []map[string]string{}
	for _, id := range valid {
		atts = append(atts, map[string]string{"containerID": id, "ifname": "eth0"})
	}
	conf["cni.dev/valid-attachments"] = atts
	stdin, _ := json.Marshal(conf)
	var out bytes.Buffer
	var runErr error
	_ = tp.inNode(func() error {
		cmd := exec.Command(filepath.Join(binDir, "egress-cni"))
		cmd.Env = []string{"CNI_COMMAND=GC", "CNI_PATH=" + refPlugins, "PATH=" + os.Getenv("PATH")}
		cmd.Stdin, cmd.Stdout = bytes.NewReader(stdin), &out
		runErr = cmd.Run()
		return nil
	})
	return out.String(), runErr
}
