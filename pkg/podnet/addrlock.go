package podnet

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
)

// lockAddress takes the lock of address ip in the lock file path, as
// lockVLAN takes a VLAN id's: ipamd can give an address it released for
// one pod's DEL to another pod at once (IP_COOLDOWN_PERIOD 0), and the
// two pods' locks do not serialise that pod's ADD with the first pod's
// teardown, whose routes and rules name only the address. Take it after
// the pod lock, one address at a time. Its byte is hashed from a key with
// no pod veth's shape, so it is no pod's.
func lockAddress(ctx context.Context, path string, ip net.IP, wait time.Duration) *podLock {
	return lockPod(ctx, path, "address "+ip.String(), wait)
}

// addHostRoutesLocked is addHostRoutes under the address's lock.
func addHostRoutesLocked(ctx context.Context, h *netlink.Handle, lockFile string, ifc Interface, hostIndex int) error {
	lock := lockAddress(ctx, lockFile, ifc.Address.IP, addLockWait)
	defer lock.unlock()
	return addHostRoutes(h, ifc.Address, ifc.HostVeth, hostIndex, HostTable(ifc.RouteTable))
}

// removeOwnHostRoutes is removeHostRoutes for a regular pod's interface,
// under the address's lock. An address main routes through a link other
// than the pod's host veth was given to a newer pod since ipamd released
// it, so its route and rules are that pod's: nothing is removed, and kept
// says why. Under the lock, that pod's ADD has either wired all of it or
// not begun.
func removeOwnHostRoutes(ctx context.Context, h *netlink.Handle, lockFile string, ifc Interface, sandbox string) (kept string, err error) {
	lock := lockAddress(ctx, lockFile, ifc.Address.IP, delLockWait)
	defer lock.unlock()
	if ifc.HostVeth != "" {
		dev, err := routedElsewhere(h, hostPrefix(ifc.Address.IP), ifc.HostVeth)
		if err != nil {
			return "", err
		}
		if dev != "" {
			return fmt.Sprintf("%s is routed to %s, not to %s: its route and rules are another pod's", ifc.Address.IP, dev, ifc.HostVeth), nil
		}
		ownerChecked()
	}
	return removeHostRoutes(h, ifc.Address, ifc.HostVeth, sandbox, HostTable(ifc.RouteTable))
}
