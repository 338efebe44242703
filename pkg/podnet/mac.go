package podnet

import (
	"crypto/rand"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// macAttempts bounds redraws of a host veth MAC that collides.
const macAttempts = 10

// uniqueHostMAC draws a random locally administered unicast MAC that no link
// in the calling thread's namespace uses. The pod's permanent gateway
// neighbour points at it, so a collision would misroute the pod's traffic.
func uniqueHostMAC() (net.HardwareAddr, error) {
	links, err := retryDump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	used := make(map[string]bool, len(links))
	for _, l := range links {
		used[l.Attrs().HardwareAddr.String()] = true
	}
	for range macAttempts {
		mac := make(net.HardwareAddr, 6)
		if _, err := rand.Read(mac); err != nil {
			return nil, fmt.Errorf("draw MAC: %w", err)
		}
		mac[0] = (mac[0] | 0x02) &^ 0x01
		if !used[mac.String()] {
			return mac, nil
		}
	}
	return nil, fmt.Errorf("no unused MAC after %d attempts", macAttempts)
}
