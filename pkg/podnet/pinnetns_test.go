package podnet_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
)

// TestPinNetNSOpensNoOtherFile: CNI_NETNS is runtime input and may name
// any file. Checking it used to open it, so a device whose open has
// effects (a watchdog arms, a tape rewinds) had them before the path was
// refused. Every probe here lives in a directory watched for opens: each
// must be refused as no namespace without having been opened.
func TestPinNetNSOpensNoOtherFile(t *testing.T) {
	w := podnettest.OpenProbes(t)
	dir := w.Dir()

	pin := func(p string) error {
		ns, err := podnet.PinNetNS(p)
		ns.Close()
		return err
	}
	for _, c := range []struct {
		name  string
		check func(string) error
	}{
		{"PinNetNS", pin},
		{"VerifyNetNS", podnet.VerifyNetNS},
	} {
		for _, f := range []string{"regular", "fifo", "link"} {
			p := filepath.Join(dir, f)
			if err := c.check(p); !errors.Is(err, podnet.ErrNotNetNS) {
				t.Errorf("%s(%s) = %v, want %v", c.name, f, err, podnet.ErrNotNetNS)
			}
			opened, err := w.Opened("sentinel")
			if err != nil {
				t.Fatal(err)
			}
			if len(opened) != 0 {
				t.Errorf("%s(%s) opened %v", c.name, f, opened)
			}
		}
	}
	// A namespace is still opened and checked: the plugin's own is refused.
	if err := pin("/proc/thread-self/ns/net"); !errors.Is(err, podnet.ErrOwnNetNS) {
		t.Errorf("PinNetNS(own namespace) = %v, want %v", err, podnet.ErrOwnNetNS)
	}
}
