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
	n, ipamd := netnsNode(t, "10.0.0.60")
	fifo := filepath.Join(t.TempDir(), "netns")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	refusedNetNS(t, n, ipamd, "ctr-fifo", fifo, "", nil)
	if got := ipamd.addsFor("ctr-fifo"); len(got) != 0 {
		t.Errorf("ipamd was asked %d times", len(got))
	}
	wantState(t, "node", n.ns.Path(), nil)
}

// netnsNode is the node and ipamd (with one pod address, ip) of the tests
// that give CNI_NETNS paths that are no namespace.
func netnsNode(t *testing.T, ip string) (node, *fakeIpamd) {
	t.Helper()
	testutil.Privileged(t)
	return newNode(t, "192.168.0.10"), startFakeIpamd(t, allocation{ip: ip, routeTable: 254})
}

// refusedNetNS runs ADD then DEL of containerID with CNI_NETNS netns, each
// killed after 10s: ADD must refuse it at once naming CNI_NETNS, DEL
// succeed; what labels the failures; after, if set, runs after each
// command.
func refusedNetNS(t *testing.T, n node, ipamd *fakeIpamd, containerID, netns, what string, after func(command string)) {
	t.Helper()
	add := call{command: "ADD", containerID: containerID, netns: netns, ifName: "eth0", podName: strings.TrimPrefix(containerID, "ctr-"), podNS: "default",
		conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	del := add
	del.command = "DEL"
	for _, c := range []struct {
		call call
		want string // "" for success
	}{
		{add, "CNI_NETNS: network namespace " + netns + " is not a network namespace"},
		{del, ""},
	} {
		label := strings.TrimSpace(c.call.command + " " + what)
		e, err := runWithin(t, n, c.call, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		switch {
		case c.want == "" && e != nil:
			t.Errorf("%s failed: %v", label, e)
		case c.want != "" && (e == nil || e.Code != types.ErrInvalidNetNS || !strings.Contains(e.Msg, c.want)):
			t.Errorf("%s: %v, want code %d containing %q", label, e, types.ErrInvalidNetNS, c.want)
		}
		if after != nil {
			after(c.call.command)
		}
	}
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
