package dataplane

import "fmt"

// Multi-card instances (docs/compatibility.md, "IPv6 and egress-cni"):
// ENIs on network card n > 0 are plugged like any other, and their device
// indexes start again at 0, so the instance-side link name carries the
// card: eth<device> on card 0 (eth0 is the primary ENI), eth<100·card +
// device> beyond (card 1's first ENI is eth100). ipamd finds links by MAC,
// as on EC2, where names come from the PCI slot.
func nicLinkName(nic NIC) string {
	return fmt.Sprintf("eth%d", nic.NetworkCard*100+nic.DeviceIndex)
}

// isPrimaryNIC reports the instance's primary ENI: card 0, device 0. The
// first ENI of another card is an ordinary secondary one, for ipamd to
// configure.
func isPrimaryNIC(nic NIC) bool { return nic.NetworkCard == 0 && nic.DeviceIndex == 0 }
