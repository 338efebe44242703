package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// EventSource is the part of *vpcsim.Sim the mirror needs.
type EventSource interface {
	Subscribe(fn func(vpcsim.Event)) (cancel func())
}

// Mirror keeps a Dataplane in step with a simulator: instances become node
// namespaces, attachments hot-plug ethN, assigned addresses are routed. The
// simulator delivers events before it answers the EC2 call that caused
// them, so when ipamd learns an address the VPC already routes it.
type Mirror struct {
	d      *Dataplane
	cancel func()

	mu   sync.Mutex
	errs []error
}

// dropReporter is implemented by *vpcsim.Sim: its admin API then serves
// this data plane's security-group drop counters.
type dropReporter interface {
	SetSGDropSource(fn func() ([]vpcsim.SGDrop, error))
}

// Mirror subscribes the data plane to src. The current state is replayed
// first. Failures are logged and kept for Err.
func (d *Dataplane) Mirror(src EventSource) *Mirror {
	m := &Mirror{d: d}
	if r, ok := src.(dropReporter); ok {
		r.SetSGDropSource(d.SGDrops)
	}
	m.cancel = src.Subscribe(m.apply)
	return m
}

// Stop ends the subscription.
func (m *Mirror) Stop() { m.cancel() }

// Err returns every failure to apply an event so far, joined.
func (m *Mirror) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return errors.Join(m.errs...)
}

func (m *Mirror) apply(ev vpcsim.Event) {
	if err := m.applyEvent(ev); err != nil {
		m.d.log.Error("data plane could not mirror an EC2 event", "event", fmt.Sprintf("%T", ev), "err", err)
		m.mu.Lock()
		m.errs = append(m.errs, err)
		m.mu.Unlock()
	}
}

func (m *Mirror) applyEvent(ev vpcsim.Event) error {
	d := m.d
	switch e := ev.(type) {
	case vpcsim.InstanceRunning:
		return d.AddNode(e.InstanceID, e.PrimaryIP, e.PublicIP)
	case vpcsim.InstanceTerminated:
		return d.RemoveNode(e.InstanceID)
	case vpcsim.ENIAttached:
		if e.NetworkCard != 0 {
			return fmt.Errorf("ENI %s on network card %d: only card 0 is simulated", e.ENIID, e.NetworkCard)
		}
		mac, err := net.ParseMAC(e.MAC)
		if err != nil {
			return fmt.Errorf("ENI %s: MAC %q: %w", e.ENIID, e.MAC, err)
		}
		// Routes first: they are installed when the link appears.
		if err := d.RouteAddresses(e.ENIID, ipv4Only(e.Addresses)); err != nil {
			return err
		}
		return d.AttachNIC(e.InstanceID, NIC{ENIID: e.ENIID, MAC: mac, PrimaryIP: e.PrimaryIP, Subnet: e.SubnetCIDR, DeviceIndex: e.DeviceIndex})
	case vpcsim.ENIDetached:
		return d.DetachNIC(e.ENIID)
	case vpcsim.AddressesAssigned:
		return d.RouteAddresses(e.ENIID, ipv4Only(e.Prefixes))
	case vpcsim.AddressesUnassigned:
		return d.UnrouteAddresses(e.ENIID, ipv4Only(e.Prefixes))
	case vpcsim.BranchAssociated:
		mac, err := net.ParseMAC(e.MAC)
		if err != nil {
			return fmt.Errorf("branch %s: MAC %q: %w", e.BranchENIID, e.MAC, err)
		}
		if err := d.RouteAddresses(e.BranchENIID, ipv4Only(e.Addresses)); err != nil {
			return err
		}
		return d.AssociateBranch(Branch{ENIID: e.BranchENIID, TrunkENIID: e.TrunkENIID, VLAN: e.VLAN, MAC: mac, PrimaryIP: e.PrimaryIP, Subnet: e.SubnetCIDR})
	case vpcsim.BranchDisassociated:
		return d.DisassociateBranch(e.BranchENIID)
	case vpcsim.SecurityGroupsChanged:
		return d.SetSecurity(e)
	}
	return nil
}

// ipv4Only drops IPv6 addresses: the data plane is IPv4 for now.
func ipv4Only(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, p := range ps {
		if p.Addr().Is4() {
			out = append(out, p)
		}
	}
	return out
}
