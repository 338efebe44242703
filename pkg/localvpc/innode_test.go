package localvpc

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A node that hides the machine's /run/netns behind its own (as a kube
// node does: kubeMounts) still runs plugins forked straight into it: the
// node's network namespace is opened before its mount namespace is joined.
func TestPrivilegedInNodeExecWithPrivateRunNetns(t *testing.T) {
	v := startVPC(t)
	n := v.Nodes()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Inside the node's mount namespace only (slave propagation: the
	// machine's /run/netns is untouched).
	if _, stderr, err := n.Exec(ctx, nil, nil, "/bin/sh", "-c", "mount -t tmpfs vpccni-test /run/netns"); err != nil {
		t.Fatalf("hide /run/netns in the node: %v (%s)", err, stderr)
	}
	out, stderr, err := n.Exec(ctx, nil, nil, "/bin/sh", "-c", "cat /sys/class/net/eth0/address")
	if err != nil {
		t.Fatalf("exec in a node with a private /run/netns: %v (%s)", err, stderr)
	}
	inst, err := v.Sim.Instance(n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != inst.MAC {
		t.Fatalf("eth0 in the node is %q, want the node's primary ENI %s", got, inst.MAC)
	}
}
