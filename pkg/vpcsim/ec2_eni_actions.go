package vpcsim

import "strconv"

type xmlReturn struct {
	Return bool `xml:"return"`
}

func (s *Sim) createNetworkInterface(p *params) (any, error) {
	r := createENIReq{
		SubnetID:        p.id(subnetIDs, "SubnetId"),
		Description:     p.str("Description"),
		Groups:          p.ids(groupIDs, "SecurityGroupId"),
		InterfaceType:   p.str("InterfaceType"),
		SecondaryCount:  p.int("SecondaryPrivateIpAddressCount"),
		PrefixCount:     p.int("Ipv4PrefixCount"),
		Prefixes:        p.prefixes("Ipv4Prefix", p.members("Ipv4Prefix", "Ipv4Prefix"), true),
		IPv6Count:       p.int("Ipv6AddressCount"),
		IPv6s:           p.addrs("Ipv6Addresses", p.members("Ipv6Addresses", "Ipv6Address"), false),
		IPv6PrefixCount: p.int("Ipv6PrefixCount"),
		IPv6Prefixes:    p.prefixes("Ipv6Prefix", p.members("Ipv6Prefix", "Ipv6Prefix"), false),
		Tags:            p.tagSpecs("network-interface"),
		ClientToken:     p.str("ClientToken"),
		Wire:            p.encodeExcept("Action", "Version", "ClientToken"),
	}
	if v := p.str("PrivateIpAddress"); v != "" {
		if a := p.addrs("PrivateIpAddress", []string{v}, true); len(a) == 1 {
			r.PrimaryIP = a[0]
		}
	}
	// PrivateIpAddresses.N.{PrivateIpAddress,Primary}: the primary one, if
	// flagged, is the ENI's primary address; the rest are secondaries
	for _, n := range p.indices("PrivateIpAddresses") {
		base := "PrivateIpAddresses." + itoa(n) + "."
		a := p.addrs("PrivateIpAddresses", []string{p.str(base + "PrivateIpAddress")}, true)
		if len(a) != 1 {
			continue
		}
		if pr := p.boolp(base + "Primary"); pr != nil && *pr {
			if r.PrimaryIP.IsValid() && r.PrimaryIP != a[0] {
				return nil, apiErr("InvalidParameterCombination", "Only one primary private IP address can be specified")
			}
			r.PrimaryIP = a[0]
			continue
		}
		r.SecondaryIPs = append(r.SecondaryIPs, a[0])
	}
	if p.err != nil {
		return nil, p.err
	}
	var out struct {
		ClientToken string `xml:"clientToken,omitempty"`
		ENI         xmlENI `xml:"networkInterface"`
	}
	err := s.mutate(p, func(w *world) error {
		e, err := w.createENI(r)
		if err != nil {
			return err
		}
		out.ClientToken = r.ClientToken
		out.ENI = s.eniXML(w, w.eniView(e))
		// EC2 answers a new interface as pending; it is available (as
		// vpcsim's model has it at once) by the next call
		out.ENI.Status = "pending"
		return nil
	})
	return out, err
}

func (s *Sim) attachNetworkInterface(p *params) (any, error) {
	eniID, instID := p.id(eniIDs, "NetworkInterfaceId"), p.id(instanceIDs, "InstanceId")
	dev, card := p.intp("DeviceIndex"), p.int("NetworkCardIndex")
	if p.err != nil {
		return nil, p.err
	}
	switch {
	case eniID == "":
		return nil, errMissing("NetworkInterfaceId")
	case instID == "":
		return nil, errMissing("InstanceId")
	case dev == nil:
		return nil, errMissing("DeviceIndex")
	}
	var out struct {
		AttachmentID     string `xml:"attachmentId"`
		NetworkCardIndex int    `xml:"networkCardIndex"`
	}
	err := s.mutate(p, func(w *world) error {
		att, err := w.attachENI(eniID, instID, *dev, card, false)
		if err != nil {
			return err
		}
		out.AttachmentID, out.NetworkCardIndex = att.id, att.card
		return nil
	})
	return out, err
}

func (s *Sim) detachNetworkInterface(p *params) (any, error) {
	id := p.id(attachmentIDs, "AttachmentId")
	_ = p.boolp("Force") // validated; a forced detach behaves like a normal one here
	if p.err != nil {
		return nil, p.err
	}
	err := s.mutate(p, func(w *world) error { return w.detachENI(id, false) })
	return xmlReturn{Return: true}, err
}

func (s *Sim) deleteNetworkInterface(p *params) (any, error) {
	id := p.id(eniIDs, "NetworkInterfaceId")
	if p.err != nil {
		return nil, p.err
	}
	err := s.mutate(p, func(w *world) error { return w.deleteENI(id) })
	return xmlReturn{Return: true}, err
}

func (s *Sim) modifyNetworkInterfaceAttribute(p *params) (any, error) {
	r := modifyENIReq{
		ENIID:               p.id(eniIDs, "NetworkInterfaceId"),
		AttachmentID:        p.id(attachmentIDs, "Attachment.AttachmentId"),
		DeleteOnTermination: p.boolp("Attachment.DeleteOnTermination"),
		SourceDestCheck:     p.boolp("SourceDestCheck.Value"),
	}
	if g := p.ids(groupIDs, "SecurityGroupId"); len(g) > 0 {
		r.Groups = g
	}
	if p.has("Description.Value") {
		d := p.str("Description.Value")
		r.Description = &d
	}
	if p.err != nil {
		return nil, p.err
	}
	if err := r.checkAttribute(); err != nil {
		return nil, err
	}
	err := s.mutate(p, func(w *world) error { return w.modifyENI(r) })
	return xmlReturn{Return: true}, err
}

type xmlAssignedIP struct {
	PrivateIPAddress string `xml:"privateIpAddress"`
}

// assign reads an Assign* request (a count, an address list, a prefix
// count or a prefix list; the model checks which) and applies it.
func (s *Sim) assign(p *params, v6 bool) (assignResult, error) {
	countParam, addrParam, prefixCountParam, prefixParam := "SecondaryPrivateIpAddressCount", "PrivateIpAddress", "Ipv4PrefixCount", "Ipv4Prefix"
	if v6 {
		countParam, addrParam, prefixCountParam, prefixParam = "Ipv6AddressCount", "Ipv6Addresses", "Ipv6PrefixCount", "Ipv6Prefix"
	}
	r := assignReq{
		ENIID:       p.id(eniIDs, "NetworkInterfaceId"),
		Count:       p.int(countParam),
		Addrs:       p.addrs(addrParam, p.list(addrParam), !v6),
		PrefixCount: p.int(prefixCountParam),
		Prefixes:    p.prefixes(prefixParam, p.list(prefixParam), !v6),
	}
	if p.err != nil {
		return assignResult{}, p.err
	}
	var res assignResult
	err := s.mutate(p, func(w *world) (err error) {
		res, err = w.assign(r, v6)
		return err
	})
	return res, err
}

func (s *Sim) assignPrivateIPAddresses(p *params) (any, error) {
	var out struct {
		ENIID    string          `xml:"networkInterfaceId"`
		Addrs    []xmlAssignedIP `xml:"assignedPrivateIpAddressesSet>item"`
		Prefixes []xmlIPv4Prefix `xml:"assignedIpv4PrefixSet>item"`
	}
	res, err := s.assign(p, false)
	if err != nil {
		return out, err
	}
	out.ENIID = p.str("NetworkInterfaceId")
	for _, a := range res.Addrs {
		out.Addrs = append(out.Addrs, xmlAssignedIP{PrivateIPAddress: a.String()})
	}
	for _, pf := range res.Prefixes {
		out.Prefixes = append(out.Prefixes, xmlIPv4Prefix{IPv4Prefix: pf.String()})
	}
	return out, nil
}

func (s *Sim) unassignPrivateIPAddresses(p *params) (any, error) {
	id := p.id(eniIDs, "NetworkInterfaceId")
	addrs := p.addrs("PrivateIpAddress", p.list("PrivateIpAddress"), true)
	prefixes := p.prefixes("Ipv4Prefix", p.list("Ipv4Prefix"), true)
	if p.err != nil {
		return nil, p.err
	}
	err := s.mutate(p, func(w *world) error { return w.unassignPrivate(id, addrs, prefixes) })
	return xmlReturn{Return: true}, err
}

func (s *Sim) assignIPv6Addresses(p *params) (any, error) {
	var out struct {
		ENIID    string   `xml:"networkInterfaceId"`
		Addrs    []string `xml:"assignedIpv6Addresses>item"`
		Prefixes []string `xml:"assignedIpv6PrefixSet>item"`
	}
	res, err := s.assign(p, true)
	if err != nil {
		return out, err
	}
	out.ENIID, out.Addrs, out.Prefixes = p.str("NetworkInterfaceId"), strs(res.Addrs), strs(res.Prefixes)
	return out, nil
}

func (s *Sim) unassignIPv6Addresses(p *params) (any, error) {
	id := p.id(eniIDs, "NetworkInterfaceId")
	addrs := p.addrs("Ipv6Addresses", p.list("Ipv6Addresses"), false)
	prefixes := p.prefixes("Ipv6Prefix", p.list("Ipv6Prefix"), false)
	if p.err != nil {
		return nil, p.err
	}
	var out struct {
		ENIID    string   `xml:"networkInterfaceId"`
		Addrs    []string `xml:"unassignedIpv6Addresses>item"`
		Prefixes []string `xml:"unassignedIpv6PrefixSet>item"`
	}
	err := s.mutate(p, func(w *world) error {
		res, err := w.unassignIPv6(id, addrs, prefixes)
		out.ENIID, out.Addrs, out.Prefixes = id, strs(res.Addrs), strs(res.Prefixes)
		return err
	})
	return out, err
}

func itoa(n int) string { return strconv.Itoa(n) }
