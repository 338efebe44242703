package vpcsim

import "strconv"

func (s *Sim) createTags(p *params) (any, error) {
	ids, tags := p.resourceIDs(), p.tags("Tag")
	if p.err != nil {
		return nil, p.err
	}
	for _, t := range tags {
		if err := validateTagKey(t.Key); err != nil {
			return nil, err
		}
	}
	err := s.mutate(p, func(w *world) error { return w.createTags(ids, tags) })
	return xmlReturn{Return: true}, err
}

func (s *Sim) deleteTags(p *params) (any, error) {
	ids, tags := p.resourceIDs(), p.tags("Tag")
	if p.err != nil {
		return nil, p.err
	}
	err := s.mutate(p, func(w *world) error { return w.deleteTags(ids, tags) })
	return xmlReturn{Return: true}, err
}

// runInstances supports the subset needed to build worlds: InstanceType,
// SubnetId, SecurityGroupId.N, PrivateIpAddress, MinCount/MaxCount, instance
// TagSpecifications and MetadataOptions.HttpTokens and
// .HttpPutResponseHopLimit. A ClientToken makes it idempotent, as
// CreateNetworkInterface: the SDK sends one with every attempt.
func (s *Sim) runInstances(p *params) (any, error) {
	minC, maxC := p.intp("MinCount"), p.intp("MaxCount")
	hops := p.intp("MetadataOptions.HttpPutResponseHopLimit")
	spec := InstanceSpec{
		Type:             p.str("InstanceType"),
		Subnet:           p.id(subnetIDs, "SubnetId"),
		SecurityGroups:   p.ids(groupIDs, "SecurityGroupId"),
		PrivateIP:        p.str("PrivateIpAddress"),
		Tags:             p.tagSpecs("instance"),
		IMDSv1Disabled:   p.str("MetadataOptions.HttpTokens") == "required",
		IPv6AddressCount: p.int("Ipv6AddressCount"),
	}
	if p.err != nil {
		return nil, p.err
	}
	if err := checkMetadataOptions(p, "MetadataOptions."); err != nil {
		return nil, err
	}
	if hops != nil {
		if !validHopLimit(*hops) {
			return nil, errInvalid("MetadataOptions.HttpPutResponseHopLimit", strconv.Itoa(*hops))
		}
		spec.IMDSHopLimit = *hops
	}
	if minC == nil {
		return nil, errMissing("MinCount")
	}
	if maxC == nil {
		return nil, errMissing("MaxCount")
	}
	if *minC < 1 || *maxC < *minC || *maxC > 100 {
		return nil, apiErr("InvalidParameterValue", "MinCount (%d) and MaxCount (%d) must satisfy 1 <= MinCount <= MaxCount <= 100", *minC, *maxC)
	}
	if spec.PrivateIP != "" && *maxC > 1 {
		return nil, apiErr("InvalidParameterCombination", "PrivateIpAddress cannot be used with more than one instance")
	}
	var out struct {
		ReservationID string        `xml:"reservationId"`
		OwnerID       string        `xml:"ownerId"`
		Groups        []xmlGroup    `xml:"groupSet>item"`
		Instances     []xmlInstance `xml:"instancesSet>item"`
	}
	token, wire := p.str("ClientToken"), p.encodeExcept("Action", "Version", "ClientToken")
	err := s.mutate(p, func(w *world) error {
		made, err := w.launchRetry(token, wire)
		if err != nil {
			return err
		}
		if made == nil {
			if made, err = w.launchInstances(spec, *minC, *maxC); err != nil {
				return err
			}
			w.recordLaunch(token, wire, made)
		}
		// one launch, one reservation, named after its first instance
		out.OwnerID, out.ReservationID = w.account, made[0].reservation
		for _, in := range made {
			in.reservation = out.ReservationID
			out.Instances = append(out.Instances, s.instanceXML(w, w.instanceView(in)))
		}
		return nil
	})
	return out, err
}

func (s *Sim) terminateInstances(p *params) (any, error) {
	ids := p.ids(instanceIDs, "InstanceId")
	if p.err != nil {
		return nil, p.err
	}
	if len(ids) == 0 {
		return nil, errMissing("InstanceId")
	}
	type change struct {
		InstanceID    string   `xml:"instanceId"`
		CurrentState  xmlState `xml:"currentState"`
		PreviousState xmlState `xml:"previousState"`
	}
	var out struct {
		Changes []change `xml:"instancesSet>item"`
	}
	err := s.mutate(p, func(w *world) error {
		if missing := w.missing(instanceIDs, ids); len(missing) > 0 {
			return instanceIDs.notFoundErr(missing)
		}
		for _, id := range dedupe(ids) {
			prev := w.instances[id].state
			if err := w.terminateInstance(id); err != nil {
				return err
			}
			out.Changes = append(out.Changes, change{InstanceID: id, CurrentState: stateXML("terminated"), PreviousState: stateXML(prev)})
		}
		return nil
	})
	return out, err
}
