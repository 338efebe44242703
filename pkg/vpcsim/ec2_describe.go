package vpcsim

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// paginate applies MaxResults/NextToken. Without MaxResults everything is
// returned in one page. The token names the last item returned (by key)
// and the next page starts right after it, or, when that item is gone or
// no longer matches, at the first item whose key sorts after it (lists
// are in key order unless the caller named ids), as EC2 pages, so a
// cleaner deleting each page before the next skips nothing.
func paginate[T any](items []T, p *params, minMax, maxMax int, key func(T) string) ([]T, string, error) {
	start := 0
	scope := tokenScope(p)
	if tok := p.str("NextToken"); tok != "" {
		n, ok := resumeAt(items, tok, scope, key)
		if !ok {
			return nil, "", apiErr("InvalidPaginationToken", "Invalid pagination token: %s", tok)
		}
		start = n
	}
	if !p.has("MaxResults") {
		return items[start:], "", nil
	}
	max := p.int("MaxResults")
	if p.err != nil {
		return nil, "", p.err
	}
	if max < minMax || max > maxMax {
		return nil, "", apiErr("InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. Expecting a value between %d and %d.", max, minMax, maxMax)
	}
	end := min(start+max, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte("vpcsim:" + scope + ":after:" + key(items[end-1])))
	}
	return items[start:end], next, nil
}

// resumeAt is the index a NextToken vpcsim issued for a request of this
// scope resumes at; a token of another scope is refused.
func resumeAt[T any](items []T, tok, scope string, key func(T) string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	raw, ok := strings.CutPrefix(string(b), "vpcsim:"+scope+":")
	if err != nil || !ok {
		return 0, false
	}
	last, ok := strings.CutPrefix(raw, "after:")
	if !ok || last == "" {
		return 0, false
	}
	if i := slices.IndexFunc(items, func(v T) bool { return key(v) == last }); i >= 0 {
		return i + 1, true
	}
	if i := slices.IndexFunc(items, func(v T) bool { return key(v) > last }); i >= 0 {
		return i, true
	}
	return len(items), true
}

func noIDsWithMaxResults(p *params, idParam string) error {
	if p.has("MaxResults") && len(p.indices(idParam)) > 0 {
		return apiErr("InvalidParameterCombination", "The parameter %ss cannot be used with the parameter maxResults", idParam)
	}
	return nil
}

func eniField(v ENIView, name string) ([]string, bool) {
	one := func(s string) ([]string, bool) { return []string{s}, true }
	att := v.Attachment
	if att == nil {
		// EC2 matches attachment.* filters only on attached interfaces
		if strings.HasPrefix(name, "attachment.") {
			return nil, isAttachmentFilter(name)
		}
		att = &AttachmentView{}
	}
	switch name {
	case "network-interface-id":
		return one(v.ID)
	case "status":
		return one(v.Status)
	case "description":
		return one(v.Description)
	case "interface-type":
		return one(v.InterfaceType)
	case "mac-address":
		return one(v.MAC)
	case "requester-managed":
		return one("false")
	case "source-dest-check":
		return one(strconv.FormatBool(v.SourceDestCheck))
	case "group-id":
		return v.Groups, true
	case "private-ip-address", "addresses.private-ip-address":
		out := []string{}
		if v.PrimaryIP.IsValid() {
			out = append(out, v.PrimaryIP.String())
		}
		return append(out, strs(v.SecondaryIPs)...), true
	case "ipv6-addresses.ipv6-address":
		return strs(v.IPv6), true
	case "attachment.instance-id":
		return one(att.InstanceID)
	case "attachment.attachment-id":
		return one(att.ID)
	case "attachment.status":
		return one(att.Status)
	case "attachment.device-index":
		return one(strconv.Itoa(att.DeviceIndex))
	case "attachment.delete-on-termination":
		return one(strconv.FormatBool(att.DeleteOnTermination))
	}
	return placedField(v.SubnetID, v.VPCID, v.AZ, v.Tags, name)
}

func isAttachmentFilter(name string) bool {
	switch name {
	case "attachment.instance-id", "attachment.attachment-id", "attachment.status",
		"attachment.device-index", "attachment.delete-on-termination":
		return true
	}
	return false
}

func (s *Sim) describeNetworkInterfaces(p *params) (any, error) {
	var out struct {
		ENIs      []xmlENI `xml:"networkInterfaceSet>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}
	var err error
	out.ENIs, out.NextToken, err = describe[ENIView, xmlENI]{
		idParam: "NetworkInterfaceId",
		idKind:  eniIDs,
		key:     func(v ENIView) string { return v.ID },
		all:     func(w *world) []ENIView { return w.state().NetworkInterfaces },
		byID:    viewByID((*world).eni, (*world).eniView),
		field:   eniField,
		render:  s.eniXML,

		idsNotWithMax: true,
	}.run(s, p)
	return out, err
}

func dedupe(ids []string) []string {
	var out []string
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func instanceField(v InstanceView, name string) ([]string, bool) {
	one := func(s string) ([]string, bool) { return []string{s}, true }
	switch name {
	case "instance-id":
		return one(v.ID)
	case "instance-type":
		return one(v.Type)
	case "instance-state-name":
		return one(v.State)
	case "private-ip-address":
		if !v.PrimaryIP.IsValid() {
			return nil, true
		}
		return one(v.PrimaryIP.String())
	case "network-interface.network-interface-id":
		var out []string
		for _, e := range v.ENIs {
			out = append(out, e.ID)
		}
		return out, true
	case "instance.group-id":
		return v.SecurityGroups, true
	}
	return placedField(v.SubnetID, v.VPCID, v.AZ, v.Tags, name)
}

type xmlReservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []xmlGroup    `xml:"groupSet>item"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

func (s *Sim) describeInstances(p *params) (any, error) {
	var out struct {
		Reservations []xmlReservation `xml:"reservationSet>item"`
		NextToken    string           `xml:"nextToken,omitempty"`
	}
	var err error
	out.Reservations, out.NextToken, err = describe[InstanceView, xmlReservation]{
		idParam: "InstanceId",
		idKind:  instanceIDs,
		key:     func(v InstanceView) string { return v.ID },
		all:     func(w *world) []InstanceView { return w.state().Instances },
		byID:    viewByID((*world).instance, (*world).instanceView),
		field:   instanceField,

		idsNotWithMax: true,
		render: func(w *world, v InstanceView) xmlReservation {
			return xmlReservation{
				ReservationID: w.instances[v.ID].reservation, OwnerID: w.account,
				Instances: []xmlInstance{s.instanceXML(w, v)},
			}
		},
	}.run(s, p)
	out.Reservations = joinReservations(out.Reservations)
	return out, err
}

// joinReservations lists the instances of one launch on a page under one
// reservation, as EC2 does, where the first of them is listed.
func joinReservations(rs []xmlReservation) []xmlReservation {
	var out []xmlReservation
	at := map[string]int{}
	for _, r := range rs {
		if i, ok := at[r.ReservationID]; ok {
			out[i].Instances = append(out[i].Instances, r.Instances...)
			continue
		}
		at[r.ReservationID] = len(out)
		out = append(out, r)
	}
	return out
}

func instanceTypeField(t InstanceType, name string) ([]string, bool) {
	switch name {
	case "instance-type":
		return []string{t.Name}, true
	case "bare-metal":
		return []string{strconv.FormatBool(t.BareMetal)}, true
	case "hypervisor":
		return []string{t.Hypervisor}, true
	case "processor-info.supported-architecture":
		return []string{t.Arch}, true
	}
	return nil, false
}

func (s *Sim) describeInstanceTypes(p *params) (any, error) {
	names := p.list("InstanceType")
	fs := p.filters()
	if p.err != nil {
		return nil, p.err
	}
	var types []InstanceType
	if len(names) > 0 {
		var missing []string
		for _, n := range dedupe(names) {
			t, ok := LookupInstanceType(n)
			if !ok {
				missing = append(missing, n)
				continue
			}
			types = append(types, t)
		}
		if len(missing) > 0 {
			return nil, apiErr("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", strings.Join(missing, ", "))
		}
	} else {
		types = InstanceTypes()
	}
	page, next, err := pageFiltered(types, fs, instanceTypeField, p, 5, 100, func(t InstanceType) string { return t.Name }, s.inj.faults().PageBeforeFilter)
	if err != nil {
		return nil, err
	}
	var out struct {
		Types     []xmlInstanceType `xml:"instanceTypeSet>item"`
		NextToken string            `xml:"nextToken,omitempty"`
	}
	for _, t := range page {
		out.Types = append(out.Types, instanceTypeXML(t))
	}
	out.NextToken = next
	return out, nil
}

func subnetField(v SubnetView, name string) ([]string, bool) {
	one := func(s string) ([]string, bool) { return []string{s}, true }
	switch name {
	case "cidr-block", "cidr", "cidrBlock":
		return one(v.CIDR.String())
	case "ipv6-cidr-block-association.ipv6-cidr-block":
		if v.IPv6CIDR.IsValid() {
			return one(v.IPv6CIDR.String())
		}
		return nil, true
	case "state":
		return one("available")
	case "default-for-az":
		return one("false")
	case "available-ip-address-count":
		return one(strconv.Itoa(v.AvailableIPAddressCount))
	}
	return placedField(v.ID, v.VPCID, v.AZ, v.Tags, name)
}

func (s *Sim) describeSubnets(p *params) (any, error) {
	var out struct {
		Subnets   []xmlSubnet `xml:"subnetSet>item"`
		NextToken string      `xml:"nextToken,omitempty"`
	}
	var err error
	out.Subnets, out.NextToken, err = describe[SubnetView, xmlSubnet]{
		idParam: "SubnetId",
		idKind:  subnetIDs,
		key:     func(v SubnetView) string { return v.ID },
		all:     func(w *world) []SubnetView { return w.state().Subnets },
		byID:    viewByID((*world).subnet, (*world).subnetView),
		field:   subnetField,
		render:  subnetXML,
	}.run(s, p)
	return out, err
}

func subnetXML(w *world, v SubnetView) xmlSubnet {
	x := xmlSubnet{
		SubnetID: v.ID, SubnetArn: fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", w.region, w.account, v.ID),
		State: "available", VpcID: v.VPCID, OwnerID: w.account, CidrBlock: v.CIDR.String(),
		AvailableIPAddressCount: v.AvailableIPAddressCount, AvailabilityZone: v.AZ,
		MapPublicIPOnLaunch: w.subnets[v.ID].mapPublic, TagSet: optSet(tagsXML(v.Tags)),
	}
	if v.IPv6CIDR.IsValid() {
		x.IPv6Assocs = []xmlSubnetIPv6Assoc{{AssociationID: "subnet-cidr-assoc-" + strings.TrimPrefix(v.ID, "subnet-"), IPv6CidrBlock: v.IPv6CIDR.String(), State: xmlCidrState{State: "associated"}}}
	}
	return x
}

func (s *Sim) describeVpcs(p *params) (any, error) {
	var out struct {
		Vpcs      []xmlVpc `xml:"vpcSet>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}
	var err error
	out.Vpcs, out.NextToken, err = describe[*vpc, xmlVpc]{
		idParam: "VpcId",
		idKind:  vpcIDs,
		key:     func(v *vpc) string { return v.id },
		all: func(w *world) []*vpc {
			var vs []*vpc
			for _, id := range sortedKeys(w.vpcs) {
				vs = append(vs, w.vpcs[id])
			}
			return vs
		},
		byID: func(w *world, id string) (*vpc, error) {
			v, ok := w.vpcs[id]
			if !ok {
				return nil, apiErr("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", id)
			}
			return v, nil
		},
		field:  vpcField,
		render: vpcXML,
	}.run(s, p)
	return out, err
}

func vpcField(v *vpc, name string) ([]string, bool) {
	if v == nil {
		v = &vpc{}
	}
	switch name {
	case "vpc-id":
		return []string{v.id}, true
	case "cidr", "cidr-block-association.cidr-block":
		return strs(v.cidrs), true
	case "state":
		return []string{"available"}, true
	}
	return tagField(v.tags, name)
}

func vpcXML(w *world, v *vpc) xmlVpc {
	x := xmlVpc{VpcID: v.id, OwnerID: w.account, State: "available", CidrBlock: v.cidrs[0].String(), InstanceTenancy: "default", TagSet: tagsXML(v.tags)}
	for i, c := range v.cidrs {
		x.CidrAssocs = append(x.CidrAssocs, xmlVpcCidrAssoc{AssociationID: fmt.Sprintf("vpc-cidr-assoc-%s-%d", strings.TrimPrefix(v.id, "vpc-"), i), CidrBlock: c.String(), State: xmlCidrState{State: "associated"}})
	}
	if v.ipv6.IsValid() {
		x.IPv6Assocs = []xmlVpcIPv6Assoc{{AssociationID: "vpc-cidr-assoc-" + strings.TrimPrefix(v.id, "vpc-") + "-v6", IPv6CidrBlock: v.ipv6.String(), State: xmlCidrState{State: "associated"}}}
	}
	return x
}

func (s *Sim) describeSecurityGroups(p *params) (any, error) {
	ids := p.ids(groupIDs, "GroupId")
	fs := p.filters()
	if p.err != nil {
		return nil, p.err
	}
	// GroupNames name groups of the default VPC only, and a vpcsim world
	// has none (CreateSecurityGroup without VpcId answers the same): a
	// group in any other VPC is found by the group-name filter.
	if len(p.list("GroupName")) > 0 {
		return nil, apiErr("VPCIdNotSpecified", "No default VPC for this user")
	}
	var out struct {
		Groups    []xmlSecurityGroup `xml:"securityGroupInfo>item"`
		NextToken string             `xml:"nextToken,omitempty"`
	}
	sparse := s.inj.faults().PageBeforeFilter
	err := s.do(false, func(w *world) error {
		var gs []*secGroup
		for _, id := range sortedKeys(w.sgs) {
			gs = append(gs, w.sgs[id])
		}
		if missing := w.missing(groupIDs, ids); len(missing) > 0 {
			return groupIDs.notFoundErr(missing)
		}
		gs = slices.DeleteFunc(gs, func(g *secGroup) bool {
			return len(ids) > 0 && !slices.Contains(ids, g.id)
		})
		page, next, err := pageFiltered(gs, fs, func(g *secGroup, name string) ([]string, bool) {
			if g == nil {
				g = &secGroup{}
			}
			switch name {
			case "group-id":
				return []string{g.id}, true
			case "group-name":
				return []string{g.name}, true
			case "vpc-id":
				return []string{g.vpcID}, true
			}
			return tagField(g.tags, name)
		}, p, 5, 1000, func(g *secGroup) string { return g.id }, sparse)
		if err != nil {
			return err
		}
		for _, g := range page {
			out.Groups = append(out.Groups, xmlSecurityGroup{OwnerID: w.account, GroupID: g.id, GroupName: g.name, GroupDescription: g.desc, VpcID: g.vpcID, TagSet: tagsXML(g.tags),
				Ingress: permissionsXML(w.account, g.rules, false), Egress: permissionsXML(w.account, g.rules, true),
				Arn: fmt.Sprintf("arn:aws:ec2:%s:%s:security-group/%s", w.region, w.account, g.id)})
		}
		out.NextToken = next
		return nil
	})
	return out, err
}

type xmlZone struct {
	ZoneName   string `xml:"zoneName"`
	ZoneID     string `xml:"zoneId"`
	ZoneState  string `xml:"zoneState"`
	RegionName string `xml:"regionName"`
	ZoneType   string `xml:"zoneType"`
}

func zoneField(z xmlZone, name string) ([]string, bool) {
	switch name {
	case "zone-name":
		return []string{z.ZoneName}, true
	case "zone-id":
		return []string{z.ZoneID}, true
	case "state":
		return []string{z.ZoneState}, true
	case "region-name":
		return []string{z.RegionName}, true
	case "zone-type":
		return []string{z.ZoneType}, true
	}
	return nil, false
}

// describeAvailabilityZones answers the region's zones. Like EC2, a zone
// named (by name or id) that the region does not have is an error, not an
// empty answer.
func (s *Sim) describeAvailabilityZones(p *params) (any, error) {
	names, ids := p.list("ZoneName"), p.list("ZoneId")
	fs := p.filters()
	if p.err != nil {
		return nil, p.err
	}
	var out struct {
		Zones []xmlZone `xml:"availabilityZoneInfo>item"`
	}
	err := s.do(false, func(w *world) error {
		var all []xmlZone
		for i, az := range w.azs {
			id := fmt.Sprintf("%s-az%d", strings.ReplaceAll(strings.ReplaceAll(w.region, "-", ""), "west", "w"), i+1)
			all = append(all, xmlZone{ZoneName: az, ZoneID: id, ZoneState: "available", RegionName: w.region, ZoneType: "availability-zone"})
		}
		var unknown []string
		for _, n := range names {
			if !slices.ContainsFunc(all, func(z xmlZone) bool { return z.ZoneName == n }) {
				unknown = append(unknown, n)
			}
		}
		for _, id := range ids {
			if !slices.ContainsFunc(all, func(z xmlZone) bool { return z.ZoneID == id }) {
				unknown = append(unknown, id)
			}
		}
		if len(unknown) > 0 {
			return apiErr("InvalidParameterValue", "Invalid availability zone: [%s]", strings.Join(unknown, ", "))
		}
		zones := slices.DeleteFunc(all, func(z xmlZone) bool {
			named := len(names) > 0 || len(ids) > 0
			return named && !slices.Contains(names, z.ZoneName) && !slices.Contains(ids, z.ZoneID)
		})
		zones, err := applyFilters(zones, fs, zoneField)
		if err != nil {
			return err
		}
		out.Zones = zones
		return nil
	})
	return out, err
}

type tagRow struct {
	rank                int // the kind's place in the list
	id, typ, key, value string
}

// cursor is the row's unique key, sorting as the rows are listed (by
// kind, then id, then tag key), so DescribeTags pages by position, not by
// offset, as the other describes do.
func (r tagRow) cursor() string {
	return fmt.Sprintf("%d\x00%s\x00%s", r.rank, r.id, r.key)
}

func (s *Sim) describeTags(p *params) (any, error) {
	fs := p.filters()
	if p.err != nil {
		return nil, p.err
	}
	type xmlTagDesc struct {
		ResourceID   string `xml:"resourceId"`
		ResourceType string `xml:"resourceType"`
		Key          string `xml:"key"`
		Value        string `xml:"value"`
	}
	var out struct {
		Tags      []xmlTagDesc `xml:"tagSet>item"`
		NextToken string       `xml:"nextToken,omitempty"`
	}
	sparse := s.inj.faults().PageBeforeFilter
	err := s.do(false, func(w *world) error {
		var rows []tagRow
		add := func(rank int, id, typ string, m map[string]string) {
			for _, t := range tagsXML(m) {
				rows = append(rows, tagRow{rank, id, typ, t.Key, t.Value})
			}
		}
		for _, id := range sortedKeys(w.instances) {
			add(0, id, "instance", w.instances[id].tags)
		}
		for _, id := range sortedKeys(w.enis) {
			add(1, id, "network-interface", w.enis[id].tags)
		}
		for _, id := range sortedKeys(w.subnets) {
			add(2, id, "subnet", w.subnets[id].tags)
		}
		for _, id := range sortedKeys(w.vpcs) {
			add(3, id, "vpc", w.vpcs[id].tags)
		}
		for _, id := range sortedKeys(w.sgs) {
			add(4, id, "security-group", w.sgs[id].tags)
		}
		page, next, err := pageFiltered(rows, fs, func(r tagRow, name string) ([]string, bool) {
			switch name {
			case "resource-id":
				return []string{r.id}, true
			case "resource-type":
				return []string{r.typ}, true
			case "key":
				return []string{r.key}, true
			case "value":
				return []string{r.value}, true
			}
			return nil, false
		}, p, 5, 1000, tagRow.cursor, sparse)
		if err != nil {
			return err
		}
		for _, r := range page {
			out.Tags = append(out.Tags, xmlTagDesc{r.id, r.typ, r.key, r.value})
		}
		out.NextToken = next
		return nil
	})
	return out, err
}
