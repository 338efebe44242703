package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedNetNSNotOpened: CNI_NETNS names a file that is no
// namespace. Checking it opened it, so a device whose open has effects (a
// watchdog arms and may reboot the node) had them before the command
// refused it. The probes sit in a directory watched for opens: ADD must
// refuse each, CHECK of a wired pod answer and DEL succeed, none opening
// it.
func TestPrivilegedNetNSNotOpened(t *testing.T) {
	tp := newTopo(t)
	entry := tp.egressEntry(false, "")
	w := podnettest.OpenProbes(t)
	dir := w.Dir()
	pod := testutil.NewNS(t)
	if e := execPlugin(t, tp, "ADD", "ctr-wired", pod.Path(), os.Getenv("PATH"), entry); e != nil {
		t.Fatalf("ADD into the pod's namespace: %v", e)
	}
	for _, f := range []string{"regular", "fifo"} {
		netns := filepath.Join(dir, f)
		for _, command := range []string{"ADD", "CHECK", "DEL"} {
			id := "ctr-open"
			if command == "CHECK" {
				id = "ctr-wired"
			}
			e, err := runKilledAfter(t, tp, command, id, netns, entry, 10*time.Second)
			if err != nil {
				t.Fatalf("%s %s: %v", command, f, err)
			}
			want := "CNI_NETNS: network namespace " + netns + " is not a network namespace"
			switch {
			case command == "ADD" && (e == nil || e.Code != types.ErrInvalidNetNS || !strings.Contains(e.Msg, want)):
				t.Errorf("ADD %s: %v, want code %d containing %q", f, e, types.ErrInvalidNetNS, want)
			case command == "CHECK" && (e == nil || e.Code != ErrCheckFailed):
				t.Errorf("CHECK %s: %v, want code %d", f, e, ErrCheckFailed)
			case command == "DEL" && e != nil:
				t.Errorf("DEL %s failed: %v", f, e)
			}
			opened, err := w.Opened("sentinel")
			if err != nil {
				t.Fatal(err)
			}
			if len(opened) != 0 {
				t.Errorf("%s with CNI_NETNS=%s opened %v", command, f, opened)
			}
		}
	}
	if e := execPlugin(t, tp, "DEL", "ctr-wired", pod.Path(), os.Getenv("PATH"), entry); e != nil {
		t.Fatalf("DEL of the wired pod: %v", e)
	}
	if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 0 {
		t.Errorf("addresses held: %v", held)
	}
}
