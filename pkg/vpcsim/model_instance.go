package vpcsim

import (
	"fmt"
	"net/netip"
	"strings"
)

func (w *world) runInstance(spec InstanceSpec) (*instance, error) {
	if spec.Type == "" {
		return nil, errMissing("InstanceType")
	}
	typ, ok := catalog[spec.Type]
	if !ok {
		return nil, apiErr("InvalidParameterValue", "Invalid value '%s' for InstanceType.", spec.Type)
	}
	sn, err := w.subnet(spec.Subnet)
	if err != nil {
		return nil, err
	}
	id := spec.ID
	if id != "" {
		if err := instanceIDs.checkPreset(id); err != nil {
			return nil, err
		}
		if w.idTaken(id) {
			return nil, apiErr("InvalidParameterValue", "duplicate id %s", id)
		}
	}
	hops := spec.IMDSHopLimit
	if hops == 0 {
		hops = defaultIMDSHopLimit
	}
	if !validHopLimit(hops) {
		return nil, apiErr("InvalidParameterValue", "imdsHopLimit %d: want 1-%d (EC2's HttpPutResponseHopLimit)", spec.IMDSHopLimit, maxIMDSHopLimit)
	}
	var primary netip.Addr
	if spec.PrivateIP != "" {
		primary, err = netip.ParseAddr(spec.PrivateIP)
		if err != nil || !primary.Is4() {
			return nil, errInvalid("PrivateIpAddress", spec.PrivateIP)
		}
	}
	groups, err := w.resolveGroups(sn.vpcID, spec.SecurityGroups)
	if err != nil {
		return nil, err
	}
	if id == "" {
		id = w.newID("i")
	}
	in := &instance{
		id: id, typ: typ, az: sn.az, subnetID: sn.id, vpcID: sn.vpcID, groups: groups,
		tags: copyTags(spec.Tags), state: "running", imdsV1Disabled: spec.IMDSv1Disabled, imdsHopLimit: hops,
		launched: w.now(), reservation: "r-" + strings.TrimPrefix(id, "i-"),
	}
	events := len(w.events)
	if spec.IPv6AddressCount < 0 || spec.IPv6AddressCount > typ.IPv6PerENI {
		return nil, errInvalid("Ipv6AddressCount", fmt.Sprint(spec.IPv6AddressCount))
	}
	e, err := w.createENI(createENIReq{SubnetID: sn.id, Groups: groups, PrimaryIP: primary, IPv6Count: spec.IPv6AddressCount})
	if err != nil {
		return nil, err
	}
	if sn.mapPublic {
		pub, ok := w.public.allocN(1)
		if !ok {
			w.destroyENI(e)
			w.events = w.events[:events]
			return nil, apiErr("InsufficientAddressCapacity", "The public IPv4 pool is exhausted")
		}
		e.publicIP = pub[0]
	}
	w.instances[id] = in
	// the primary ENI's own address event precedes InstanceRunning; drop it,
	// ENIAttached carries the addresses
	w.events = w.events[:events]
	in.primaryENI, in.primaryIP, in.publicIP, in.mac = e.id, e.primaryIP, e.publicIP, e.mac
	v := w.vpcs[in.vpcID]
	w.emit(InstanceRunning{InstanceID: id, Type: typ.Name, AZ: in.az, VPCID: v.id, VPCCIDRs: append([]netip.Prefix(nil), v.cidrs...), PrimaryIP: e.primaryIP, PublicIP: e.publicIP})
	if _, err := w.attachENI(e.id, id, 0, typ.DefaultCard, true); err != nil {
		return nil, fmt.Errorf("attach primary ENI: %w", err)
	}
	e.att.deleteOnTermination = true
	return in, nil
}

// launchInstances launches up to maxC instances of spec, or none if fewer
// than minC fit.
func (w *world) launchInstances(spec InstanceSpec, minC, maxC int) ([]*instance, error) {
	var made []*instance
	for i := 0; i < maxC; i++ {
		in, err := w.runInstance(spec)
		if err != nil {
			if len(made) >= minC {
				break
			}
			for _, m := range made {
				_ = w.terminateInstance(m.id)
				delete(w.instances, m.id)
			}
			return nil, err
		}
		made = append(made, in)
	}
	return made, nil
}

// terminateInstance detaches every ENI at once, deletes those marked
// delete-on-termination and frees their addresses.
func (w *world) terminateInstance(id string) error {
	in, err := w.instance(id)
	if err != nil {
		return err
	}
	if in.state == "terminated" {
		return nil
	}
	for _, e := range w.instanceENIs(id) {
		del := e.att.deleteOnTermination
		if err := w.detachENI(e.att.id, true); err != nil {
			return err
		}
		if del {
			w.destroyENI(e)
		}
	}
	in.state = "terminated"
	w.emit(InstanceTerminated{InstanceID: id})
	return nil
}
