package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedNetNSFIFO: CNI_NETNS names a FIFO, which no process
// writes to. Opening it to check it blocked ADD and DEL until the runtime
// killed them; ADD must refuse it at once naming CNI_NETNS, before ipamd
// is asked, and DEL succeed, as for any path that is no namespace.
func TestPrivilegedNetNSFIFO(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.60", routeTable: 254})
	fifo := filepath.Join(t.TempDir(), "netns")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	add := call{command: "ADD", containerID: "ctr-fifo", netns: fifo, ifName: "eth0", podName: "fifo", podNS: "default",
		conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	del := add
	del.command = "DEL"
	for _, c := range []struct {
		call call
		want string // "" for success
	}{
		{add, "CNI_NETNS: network namespace " + fifo + " is not a network namespace"},
		{del, ""},
	} {
		e, err := runWithin(t, n, c.call, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", c.call.command, err)
		}
		switch {
		case c.want == "" && e != nil:
			t.Errorf("%s failed: %v", c.call.command, e)
		case c.want != "" && (e == nil || e.Code != types.ErrInvalidNetNS || !strings.Contains(e.Msg, c.want)):
			t.Errorf("%s: %v, want code %d containing %q", c.call.command, e, types.ErrInvalidNetNS, c.want)
		}
	}
	if got := ipamd.addsFor("ctr-fifo"); len(got) != 0 {
		t.Errorf("ipamd was asked %d times", len(got))
	}
	wantState(t, "node", n.ns.Path(), nil)
}

// runWithin runs c in the node's namespace, killing the plugin after d:
// the CNI error it printed, nil on success, or an error when it had to be
// killed.
func runWithin(t *testing.T, n node, c call, d time.Duration) (*types.Error, error) {
	t.Helper()
	stdin, err := json.Marshal(c.conf)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	var runErr error
	killed := false
	err = n.ns.Do(func(ns.NetNS) error {
		cmd := c.cmd(stdin)
		cmd.Stdout = &stdout
		if err := cmd.Start(); err != nil {
			return err
		}
		timer := time.AfterFunc(d, func() { killed = true; _ = cmd.Process.Kill() })
		runErr = cmd.Wait()
		timer.Stop()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if killed {
		return nil, fmt.Errorf("still running after %s: killed", d)
	}
	if runErr == nil {
		return nil, nil
	}
	e := &types.Error{}
	if err := json.Unmarshal(stdout.Bytes(), e); err != nil {
		return nil, fmt.Errorf("%v without a CNI error on stdout: %q", runErr, stdout.Bytes())
	}
	return e, nil
}
