package main

import (
	"path/filepath"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
)

// TestPrivilegedNetNSNotOpened: CNI_NETNS names a file that is no
// namespace. Checking it opened it, so a device whose open has effects (a
// watchdog arms and may reboot the node) had them before ADD refused it.
// The probes sit in a directory watched for opens: ADD must refuse each
// and DEL succeed, neither opening it.
func TestPrivilegedNetNSNotOpened(t *testing.T) {
	n, ipamd := netnsNode(t, "10.0.0.61")
	w := podnettest.OpenProbes(t)
	dir := w.Dir()
	for _, f := range []string{"regular", "fifo"} {
		refusedNetNS(t, n, ipamd, "ctr-open", filepath.Join(dir, f), f, func(command string) {
			opened, err := w.Opened("sentinel")
			if err != nil {
				t.Fatal(err)
			}
			if len(opened) != 0 {
				t.Errorf("%s with CNI_NETNS=%s opened %v", command, f, opened)
			}
		})
	}
	if got := ipamd.addsFor("ctr-open"); len(got) != 0 {
		t.Errorf("ipamd was asked %d times", len(got))
	}
	wantState(t, "node", n.ns.Path(), nil)
}
