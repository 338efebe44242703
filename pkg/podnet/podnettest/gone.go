package podnettest

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RemoveNS deletes a bind-mounted network namespace the way a runtime does
// after DEL: the caller must have closed its own handle of it.
func RemoveNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}

// WaitLinksGone waits until none of names exists in the namespace at path.
// The kernel destroys a released namespace, and the veths whose peers were
// in it, asynchronously, so tests wait for that to finish.
func WaitLinksGone(path string, timeout time.Duration, names ...string) error {
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		err := ns.WithNetNSPath(path, func(ns.NetNS) error {
			for _, n := range names {
				_, err := netlink.LinkByName(n)
				var nf netlink.LinkNotFoundError
				switch {
				case errors.As(err, &nf):
				case err != nil:
					return err
				default:
					left = append(left, n)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("links %v still exist after %s", slices.Clip(left), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
