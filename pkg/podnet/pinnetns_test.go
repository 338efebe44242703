package podnet_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
)

// TestPinNetNSOpensNoOtherFile: CNI_NETNS is runtime input and may name
// any file. Checking it used to open it, so a device whose open has
// effects (a watchdog arms, a tape rewinds) had them before the path was
// refused. Every probe here lives in a directory watched for opens: each
// must be refused as no namespace without having been opened.
func TestPinNetNSOpensNoOtherFile(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"regular", "sentinel"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "regular"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	w, err := podnettest.WatchOpens(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

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
