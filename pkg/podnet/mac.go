package podnet

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// randomHostMAC draws a random locally administered unicast MAC for a host
// veth. The pod's permanent gateway neighbour points at it, so it must not
// collide with another link's MAC in the node; with 46 random bits the
// chance that it does among even thousands of links is below 1e-10, so the
// node's link list is not dumped on every ADD to check (that dump grows
// with the pods on the node). Upstream redraws against such a dump.
//
// The bits come from getrandom(2) directly: crypto/rand would link math/big
// and the crypto module's start-up into a plugin exec'd once per pod
// (bench/README.md, figure 1), for 6 bytes that need no more than the
// kernel's generator.
func randomHostMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	for got := 0; got < len(mac); {
		n, err := unix.Getrandom(mac[got:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("draw MAC: getrandom: %w", err)
		}
		got += n
	}
	mac[0] = (mac[0] | 0x02) &^ 0x01
	return mac, nil
}
