package podnet

import (
	"crypto/rand"
	"fmt"
	"net"
)

// randomHostMAC draws a random locally administered unicast MAC for a host
// veth. The pod's permanent gateway neighbour points at it, so it must not
// collide with another link's MAC in the node; with 46 random bits the
// chance that it does among even thousands of links is below 1e-10, so the
// node's link list is not dumped on every ADD to check (that dump grows
// with the pods on the node). Upstream redraws against such a dump.
func randomHostMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, fmt.Errorf("draw MAC: %w", err)
	}
	mac[0] = (mac[0] | 0x02) &^ 0x01
	return mac, nil
}
