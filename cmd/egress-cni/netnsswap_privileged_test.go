package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedAddNetNSSwappedToNode: CNI_NETNS is a symlink to a pod's
// namespace that a hostile runtime points at the node's own namespace
// after egress-cni checked it, while the ADD waits for its address (the
// store's lock, held here, stands for a busy node). The node keeps its
// links, addresses and routes (its default route above all, which the
// egress routes would replace) and its eth0 keeps IPv6; the ADD fails
// naming CNI_NETNS, holds no address, leaves no nat rule and nothing in
// the pod's namespace, the one it checked and wired.
func TestPrivilegedAddNetNSSwappedToNode(t *testing.T) {
	tp := newTopo(t)
	for _, v6 := range []bool{false, true} {
		dir := map[bool]string{false: "egress-v4-ipam", true: "egress-v6-ipam"}[v6]
		entry := tp.egressEntry(v6, "")
		pod := testutil.NewNS(t)
		// The pod's main interface, which IPv6 egress needs.
		addMainIf(t, pod, "eth0")
		link := filepath.Join(t.TempDir(), "netns")
		if err := os.Symlink(pod.Path(), link); err != nil {
			t.Fatal(err)
		}
		nodeBefore, podBefore, natBefore := snapshot(t, tp.node.Path()), snapshot(t, pod.Path()), tp.nat(t, v6)
		ipv6Before := nodeSysctl(t, tp, "net/ipv6/conf/eth0/disable_ipv6")

		lock := holdStoreLock(t, filepath.Join(tp.dataDir, dir, "aws-cni"))
		cmd, stdout := startPlugin(t, tp, "ADD", "ctr-swap", link, entry)
		waitBlockedOnLock(t, cmd.Process.Pid)
		next := link + ".next"
		if err := os.Symlink(tp.node.Path(), next); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(next, link); err != nil {
			t.Fatal(err)
		}
		lock.Close()
		runErr := cmd.Wait()

		wantLines(t, fmt.Sprintf("v6=%v node after the ADD", v6), snapshot(t, tp.node.Path()), nodeBefore)
		if got := nodeSysctl(t, tp, "net/ipv6/conf/eth0/disable_ipv6"); got != ipv6Before {
			t.Errorf("v6=%v node eth0 disable_ipv6 %q after the ADD, was %q", v6, got, ipv6Before)
		}
		wantLines(t, fmt.Sprintf("v6=%v pod after the ADD", v6), snapshot(t, pod.Path()), podBefore)
		wantLines(t, fmt.Sprintf("v6=%v nat after the ADD", v6), tp.nat(t, v6), natBefore)
		if held := storeEntries(t, filepath.Join(tp.dataDir, dir)); len(held) != 0 {
			t.Errorf("v6=%v addresses held after the ADD: %v", v6, held)
		}
		var e types.Error
		if runErr == nil || json.Unmarshal(stdout.Bytes(), &e) != nil {
			t.Errorf("v6=%v ADD: %v, want a CNI error on stdout, got %s", v6, runErr, stdout.Bytes())
		} else if want := "CNI_NETNS: network namespace " + link + " changed"; e.Code != types.ErrInvalidNetNS || !strings.Contains(e.Msg, want) {
			t.Errorf("v6=%v ADD failed with code %d %q, want code %d containing %q", v6, e.Code, e.Msg, types.ErrInvalidNetNS, want)
		}
		// Whatever the ADD left, the runtime's DEL removes it.
		if e := execPlugin(t, tp, "DEL", "ctr-swap", pod.Path(), os.Getenv("PATH"), entry); e != nil {
			t.Errorf("v6=%v DEL: %v", v6, e)
		}
	}
}

// holdStoreLock takes the egress store's lock in dir, as an ADD or DEL
// taking an address does; closing the file releases it.
func holdStoreLock(t *testing.T, dir string) *os.File {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return f
}

// waitBlockedOnLock waits until process pid waits for a flock.
func waitBlockedOnLock(t *testing.T, pid int) {
	t.Helper()
	if err := poll.Until(context.Background(), 30*time.Second, func() error { return blockedOnLock(pid) }); err != nil {
		t.Fatalf("egress-cni (pid %d) never waited for the store's lock: %v", pid, err)
	}
}

// blockedOnLock reports, with nil, that process pid waits for a flock, as
// /proc/locks shows ("->" marks a blocked request).
func blockedOnLock(pid int) error {
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) > 5 && fs[1] == "->" && fs[2] == "FLOCK" && fs[5] == strconv.Itoa(pid) {
			return nil
		}
	}
	return errors.New("no blocked flock request")
}
