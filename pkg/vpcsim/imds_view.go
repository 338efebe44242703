package vpcsim

import (
	"net/netip"
	"reflect"
	"slices"
	"time"
)

// imdsView is what an instance's metadata service shows at one moment.
type imdsView struct {
	InstanceID   string
	InstanceType string
	AZ           string
	Region       string
	AccountID    string
	Arch         string
	LocalIPv4    string
	PublicIPv4   string
	IPv6         string
	MAC          string
	Launched     time.Time
	V1Disabled   bool
	SGNames      []string
	MACs         []imdsMAC // by card, then device index
}

type imdsMAC struct {
	MAC          string
	ENIID        string
	Device       int
	Card         int
	SubnetID     string
	VPCID        string
	OwnerID      string
	SGIDs        []string
	SGNames      []string
	LocalIPv4s   []string
	PublicIPv4s  []string
	IPv4Prefixes []string
	IPv6s        []string
	IPv6Prefixes []string
	SubnetCIDR   string
	SubnetIPv6   string
	VPCCIDRs     []string
	VPCIPv6      string
}

type imdsSnap struct {
	at   time.Time
	view *imdsView
}

func strs[T interface{ String() string }](xs []T) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, x.String())
	}
	return out
}

func (w *world) imdsView(in *instance) *imdsView {
	v := &imdsView{
		InstanceID: in.id, InstanceType: in.typ.Name, AZ: in.az, Region: w.region, AccountID: w.account,
		Arch: in.typ.Arch, LocalIPv4: in.primaryIP.String(), MAC: in.mac, Launched: in.launched,
		V1Disabled: in.imdsV1Disabled,
	}
	if in.publicIP.IsValid() {
		v.PublicIPv4 = in.publicIP.String()
	}
	for _, g := range in.groups {
		v.SGNames = append(v.SGNames, w.sgs[g].name)
	}
	vp := w.vpcs[in.vpcID]
	for _, e := range w.instanceENIs(in.id) {
		// an ENI shows up in metadata once attached and until fully detached
		if e.att.status == "attaching" {
			continue
		}
		sn := w.subnets[e.subnetID]
		m := imdsMAC{
			MAC: e.mac, ENIID: e.id, Device: e.att.deviceIndex, Card: e.att.card, SubnetID: e.subnetID,
			VPCID: e.vpcID, OwnerID: w.account, SGIDs: append([]string(nil), e.groups...),
			LocalIPv4s:   append([]string{e.primaryIP.String()}, strs(e.secondary)...),
			IPv4Prefixes: strs(e.prefixes), IPv6s: strs(e.ipv6), IPv6Prefixes: strs(e.ipv6Prefixes),
			SubnetCIDR: sn.cidr.String(), VPCCIDRs: strs(vp.cidrs),
		}
		for _, g := range e.groups {
			m.SGNames = append(m.SGNames, w.sgs[g].name)
		}
		if e.publicIP.IsValid() {
			m.PublicIPv4s = []string{e.publicIP.String()}
		}
		if sn.ipv6.IsValid() {
			m.SubnetIPv6 = sn.ipv6.String()
		}
		if vp.ipv6.IsValid() {
			m.VPCIPv6 = vp.ipv6.String()
		}
		if e.id == in.primaryENI && len(e.ipv6) > 0 {
			v.IPv6 = e.ipv6[0].String()
		}
		v.MACs = append(v.MACs, m)
	}
	return v
}

// recordIMDS appends a snapshot for every touched instance whose view
// changed (all instances when all is set). Caller holds s.mu.
func (s *Sim) recordIMDS(all bool) {
	ids := s.w.touched
	s.w.touched = nil
	if all {
		ids = map[string]bool{}
		for id := range s.w.instances {
			ids[id] = true
		}
	}
	now := s.now()
	lag := time.Duration(s.inj.faults().IMDSLag)
	for id := range ids {
		in, ok := s.w.instances[id]
		if !ok {
			continue
		}
		hist := s.imds[id]
		v := s.w.imdsView(in)
		if n := len(hist); n > 0 && reflect.DeepEqual(hist[n-1].view, v) {
			continue
		}
		hist = append(hist, imdsSnap{at: now, view: v})
		// drop snapshots no reader can see any more: keep the newest one at or
		// before now-lag and everything after it
		cut := now.Add(-lag)
		keep := 0
		for i, h := range hist {
			if !h.at.After(cut) {
				keep = i
			}
		}
		s.imds[id] = hist[keep:]
	}
}

// lagged returns the view of an instance as it was IMDSLag ago.
func (s *Sim) lagged(instanceID string) (*imdsView, bool) {
	var out *imdsView
	_ = s.do(false, func(w *world) error {
		hist := s.imds[instanceID]
		if len(hist) == 0 {
			return nil
		}
		cut := s.now().Add(-time.Duration(s.inj.faults().IMDSLag))
		out = hist[0].view
		for _, h := range hist {
			if !h.at.After(cut) {
				out = h.view
			}
		}
		return nil
	})
	return out, out != nil
}

// instanceByPrivateIP finds the running instance that holds addr: its
// primary address, or any address or prefix of an ENI attached to it, as
// EC2's IMDS answers whatever address of the instance a request leaves
// from (a pod not SNATed to the node's address reads its node's metadata).
func (s *Sim) instanceByPrivateIP(addr netip.Addr) (string, bool) {
	var id string
	_ = s.do(false, func(w *world) error {
		for _, iid := range sortedKeys(w.instances) {
			in := w.instances[iid]
			if in.state != "running" {
				continue
			}
			if in.primaryIP == addr {
				id = in.id
				return nil
			}
			for _, e := range w.instanceENIs(in.id) {
				if e.holds(addr) {
					id = in.id
					return nil
				}
			}
		}
		return nil
	})
	return id, id != ""
}

// holds reports whether addr is one of e's addresses or in one of its
// prefixes.
func (e *eni) holds(addr netip.Addr) bool {
	if e.primaryIP == addr || slices.Contains(e.secondary, addr) || slices.Contains(e.ipv6, addr) {
		return true
	}
	for _, p := range slices.Concat(e.prefixes, e.ipv6Prefixes) {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
