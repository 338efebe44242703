package vpcsim

// modifyInstanceMetadataOptions changes an instance's IMDSv2 requirement and
// token hop limit. HttpEndpoint, HttpProtocolIpv6 and InstanceMetadataTags
// keep vpcsim's fixed values (enabled, disabled, disabled); asking for
// another is refused rather than answered as if applied.
func (s *Sim) modifyInstanceMetadataOptions(p *params) (any, error) {
	id := p.str("InstanceId")
	c := metadataOptionsChange{HopLimit: p.intp("HttpPutResponseHopLimit"), Tokens: p.str("HttpTokens")}
	if p.err != nil {
		return nil, p.err
	}
	if id == "" {
		return nil, errMissing("InstanceId")
	}
	for param, fixed := range map[string]string{"HttpEndpoint": "enabled", "HttpProtocolIpv6": "disabled", "InstanceMetadataTags": "disabled"} {
		if v := p.str(param); v != "" && v != fixed {
			return nil, apiErr("UnsupportedOperation", "vpcsim does not model %s=%s", param, v)
		}
	}
	var out struct {
		InstanceID string             `xml:"instanceId"`
		Options    xmlMetadataOptions `xml:"instanceMetadataOptions"`
	}
	err := s.do(true, func(w *world) error {
		in, err := w.modifyMetadataOptions(id, c)
		if err != nil {
			return err
		}
		out.InstanceID, out.Options = in.id, metadataOptionsXML(w.instanceView(in))
		return nil
	})
	return out, err
}
