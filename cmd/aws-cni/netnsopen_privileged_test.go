package main

import (
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
// watchdog arms and may reboot the node) had them before ADD refused it.
// The probes sit in a directory watched for opens: ADD must refuse each
// and DEL succeed, neither opening it.
func TestPrivilegedNetNSNotOpened(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.61", routeTable: 254})
	w := podnettest.OpenProbes(t)
	dir := w.Dir()
	for _, f := range []string{"regular", "fifo"} {
		netns := filepath.Join(dir, f)
		add := call{command: "ADD", containerID: "ctr-open", netns: netns, ifName: "eth0", podName: "open", podNS: "default",
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
			e, err := runWithin(t, n, c.call, 10*time.Second)
			if err != nil {
				t.Fatalf("%s %s: %v", c.call.command, f, err)
			}
			switch {
			case c.want == "" && e != nil:
				t.Errorf("%s %s failed: %v", c.call.command, f, e)
			case c.want != "" && (e == nil || e.Code != types.ErrInvalidNetNS || !strings.Contains(e.Msg, c.want)):
				t.Errorf("%s %s: %v, want code %d containing %q", c.call.command, f, e, types.ErrInvalidNetNS, c.want)
			}
			opened, err := w.Opened("sentinel")
			if err != nil {
				t.Fatal(err)
			}
			if len(opened) != 0 {
				t.Errorf("%s with CNI_NETNS=%s opened %v", c.call.command, f, opened)
			}
		}
	}
	if got := ipamd.addsFor("ctr-open"); len(got) != 0 {
		t.Errorf("ipamd was asked %d times", len(got))
	}
	wantState(t, "node", n.ns.Path(), nil)
}
