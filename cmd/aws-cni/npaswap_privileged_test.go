package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedAddNetNSSwappedDuringAgentCall: CNI_NETNS is a symlink
// that the runtime points at another namespace while the network policy
// agent enforces the pod's policies, after the wiring and the check that
// the path still names the namespace wired. stdout must hold exactly one
// CNI document matching the exit code, and no result may describe the
// namespace the path now names: the ADD fails with code 8 naming
// CNI_NETNS, gives the address back, leaves nothing on the node or in
// either namespace, and the runtime's DEL of the failed sandbox gets the
// agent told the pod is gone.
func TestPrivilegedAddNetNSSwappedDuringAgentCall(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	podNS, otherNS := testutil.NewNS(t), testutil.NewNS(t)
	link := filepath.Join(t.TempDir(), "netns")
	if err := os.Symlink(podNS.Path(), link); err != nil {
		t.Fatal(err)
	}
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.41", routeTable: 254})
	ipamd.npMode = "strict"
	npa := startFakeNPA(t)
	npa.onEnforce = func() {
		next := link + ".next"
		if err := os.Symlink(otherNS.Path(), next); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(next, link); err != nil {
			t.Error(err)
		}
	}
	add := call{command: "ADD", containerID: "ctr-npswap", netns: link, ifName: "eth0", podName: "npswap", podNS: "default",
		conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	stdout, _, runErr := n.runRaw(t, add)
	if target, err := os.Readlink(link); err != nil || target != otherNS.Path() {
		t.Fatalf("the symlink was not swapped while the agent answered: %q, %v", target, err)
	}
	docs := jsonDocuments(t, stdout)
	if len(docs) != 1 {
		t.Fatalf("stdout holds %d JSON documents, want 1: %s", len(docs), stdout)
	}
	var e types.Error
	_ = json.Unmarshal(docs[0], &e)
	var exitErr *exec.ExitError
	switch {
	case runErr == nil && e.Code != 0:
		t.Fatalf("exit code 0 with a CNI error on stdout: %s", docs[0])
	case runErr != nil && !errors.As(runErr, &exitErr):
		t.Fatalf("run plugin: %v", runErr)
	case runErr != nil && e.Code == 0:
		t.Fatalf("ADD failed (%v) with no CNI error on stdout: %s", runErr, docs[0])
	}

	hostVeth := vethname.HostVethName("eni", "default", "npswap", 0)
	wantState(t, "pod", podNS.Path(), nil)
	wantState(t, "other namespace", otherNS.Path(), nil)
	for _, l := range snapshot(t, n.ns.Path()) {
		if strings.Contains(l, hostVeth) || strings.Contains(l, "10.0.0.41") {
			t.Errorf("node keeps %s", l)
		}
	}
	if want := "CNI_NETNS: network namespace " + link + " changed while the ADD wired it"; e.Code != types.ErrInvalidNetNS || !strings.Contains(e.Msg, want) {
		t.Fatalf("ADD: code %d %q, want code %d containing %q (stdout %s)", e.Code, e.Msg, types.ErrInvalidNetNS, want, docs[0])
	}
	if got := ipamd.releases(add.containerID); !slices.Contains(got, releaseReason) || ipamd.holds(add.containerID) {
		t.Errorf("ipamd saw releases %q (holds %v), want %s", got, ipamd.holds(add.containerID), releaseReason)
	}
	// The runtime deletes the failed sandbox; the agent, which enforced
	// the pod's policies before the swap was seen, must be told.
	del := add
	del.command = "DEL"
	n.run(t, del).mustSucceed(t, "DEL of the failed sandbox")
	if npa.enforcing("default", "npswap") {
		t.Error("the agent still enforces the failed pod's policies after its DEL")
	}
}

// jsonDocuments splits b into the JSON documents it holds.
func jsonDocuments(t *testing.T, b []byte) []json.RawMessage {
	t.Helper()
	var docs []json.RawMessage
	d := json.NewDecoder(bytes.NewReader(b))
	for {
		var m json.RawMessage
		err := d.Decode(&m)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("stdout is not a sequence of JSON documents (%v): %s", err, b)
		}
		docs = append(docs, m)
	}
}
