package vpcsim

// modifyInstanceMetadataOptions changes an instance's IMDSv2 requirement and
// token hop limit. HttpEndpoint, HttpProtocolIpv6 and InstanceMetadataTags
// keep vpcsim's fixed values (enabled, disabled, disabled); asking for
// another is refused rather than answered as if applied.
func (s *Sim) modifyInstanceMetadataOptions(p *params) (any, error) {
	id := p.id(instanceIDs, "InstanceId")
	c := metadataOptionsChange{HopLimit: p.intp("HttpPutResponseHopLimit"), Tokens: p.str("HttpTokens")}
	if p.err != nil {
		return nil, p.err
	}
	if id == "" {
		return nil, errMissing("InstanceId")
	}
	if err := checkMetadataOptions(p, ""); err != nil {
		return nil, err
	}
	var out struct {
		InstanceID string             `xml:"instanceId"`
		Options    xmlMetadataOptions `xml:"instanceMetadataOptions"`
	}
	err := s.mutate(p, func(w *world) error {
		in, err := w.modifyMetadataOptions(id, c)
		if err != nil {
			return err
		}
		out.InstanceID, out.Options = in.id, metadataOptionsXML(w.instanceView(in))
		return nil
	})
	return out, err
}

// metadataEnums are the values EC2 accepts for each metadata option, and
// the one vpcsim models where it models only one.
var metadataEnums = []struct{ param, a, b, fixed string }{
	{"HttpTokens", "optional", "required", ""},
	{"HttpEndpoint", "enabled", "disabled", "enabled"},
	{"HttpProtocolIpv6", "enabled", "disabled", "disabled"},
	{"InstanceMetadataTags", "enabled", "disabled", "disabled"},
}

// checkMetadataOptions refuses a metadata option EC2 would refuse
// (InvalidParameterValue naming it, with prefix as RunInstances nests them)
// and one EC2 accepts but vpcsim does not model (UnsupportedOperation),
// rather than answering as if it were applied.
func checkMetadataOptions(p *params, prefix string) error {
	for _, e := range metadataEnums {
		v := p.str(prefix + e.param)
		switch {
		case v == "":
		case v != e.a && v != e.b:
			return errInvalid(prefix+e.param, v)
		case e.fixed != "" && v != e.fixed:
			return apiErr("UnsupportedOperation", "vpcsim does not model %s=%s", prefix+e.param, v)
		}
	}
	return nil
}
