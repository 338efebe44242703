package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
)

// HostENI makes the VPC namespace itself serve whoami on an ENI's primary
// address, standing for a server in the VPC (a database, say) that is not
// a node: the ENI's security groups then filter what reaches it, and its
// addresses count as members of its groups for rules that reference them.
// The ENI should exist in EC2 unattached (a scenario networkInterfaces
// entry), so that nothing else routes its address.
func (d *Dataplane) HostENI(eniID string, addr netip.Addr) error {
	if eniID == "" || !addr.Is4() {
		return fmt.Errorf("host ENI %q at %v: want an ENI id and an IPv4 address", eniID, addr)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("host ENI: data plane closed")
	}
	if _, ok := d.hosted[eniID]; ok {
		return fmt.Errorf("host ENI %s: already hosted", eniID)
	}
	if err := addLoopback(d.vpc, addr); err != nil {
		return fmt.Errorf("host ENI %s: address %s: %w", eniID, addr, err)
	}
	c, err := ServeWhoami(d.vpcPath, netip.AddrPortFrom(addr, WhoamiPort))
	if err != nil {
		return fmt.Errorf("host ENI %s: %w", eniID, err)
	}
	d.svc.add(c)
	d.hosted[eniID] = addr
	d.log.Info("ENI hosted in the VPC namespace", "eni", eniID, "addr", addr)
	return d.applySGLocked()
}
