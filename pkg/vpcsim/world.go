package vpcsim

import (
	"fmt"
	"net/netip"
	"sort"
	"time"
)

// world is the EC2 model: pure state and rules, no HTTP. Every method assumes
// the caller (Sim) holds its lock.
type world struct {
	now     func() time.Time
	region  string
	account string
	azs     []string

	vpcs        map[string]*vpc
	subnets     map[string]*subnet
	sgs         map[string]*secGroup
	instances   map[string]*instance
	enis        map[string]*eni
	attachments map[string]*eni        // attachment id → ENI
	pending     map[string]*eni        // attachment id → ENI in attaching/detaching
	assocs      map[string]*trunkAssoc // trunk association id → association
	rules       map[string]*sgRule     // security group rule id → rule
	launches    map[string]*launch     // RunInstances ClientToken → what it launched
	disassocs   map[string]string      // DisassociateTrunkInterface ClientToken → association id

	public *v4Pool
	seq    map[string]uint64
	macSeq uint64

	attachDelay time.Duration
	detachDelay time.Duration

	events []Event // emitted by the current operation, drained by Sim
	// touched lists instances whose metadata may have changed since the
	// last IMDS snapshot, so snapshots cost O(changed instances)
	touched map[string]bool
	// sgDirty: groups, rules or group membership changed in this operation
	sgDirty bool
}

type vpc struct {
	id    string
	cidrs []netip.Prefix // primary first
	ipv6  netip.Prefix
	tags  map[string]string
}

type subnet struct {
	id, vpcID, az string
	cidr          netip.Prefix
	ipv6          netip.Prefix
	mapPublic     bool
	tags          map[string]string
	v4            *v4Pool
	v6            *v6Pool // nil without IPv6
}

type secGroup struct {
	id, name, desc, vpcID string
	tags                  map[string]string
	rules                 []*sgRule // in the order they were added
}

type instance struct {
	id             string
	reservation    string // the launch's reservation id, shared by the instances of one RunInstances
	token          string // the launch's ClientToken, if any
	typ            InstanceType
	az             string
	subnetID       string
	vpcID          string
	groups         []string
	tags           map[string]string
	state          string // running, terminated
	imdsV1Disabled bool
	imdsHopLimit   int // HttpPutResponseHopLimit
	launched       time.Time
	primaryENI     string
	primaryIP      netip.Addr
	publicIP       netip.Addr
	mac            string
}

type eni struct {
	id            string
	token         string       // CreateNetworkInterface's ClientToken, if any
	request       createENIReq // the call that made it, kept when it had a token
	subnetID      string
	vpcID         string
	az            string
	description   string
	interfaceType string // "interface", "trunk" or "branch"
	mac           string
	groups        []string
	tags          map[string]string
	primaryIP     netip.Addr
	secondary     []netip.Addr
	prefixes      []netip.Prefix
	ipv6          []netip.Addr
	ipv6Prefixes  []netip.Prefix
	publicIP      netip.Addr
	noSrcDstCheck bool // EC2's default is to check
	att           *attachment
	// associated: a branch ENI on a trunk. EC2 reports it in-use though it
	// has no attachment, so "status=available" sweeps pass it by.
	associated bool
}

type attachment struct {
	id                  string
	instanceID          string
	deviceIndex         int
	card                int
	status              string // attaching, attached, detaching
	deleteOnTermination bool
	attachTime          time.Time
	due                 time.Time // when attaching/detaching completes
}

func (e *eni) status() string {
	if e.att == nil {
		if e.associated {
			return "in-use"
		}
		return "available"
	}
	switch e.att.status {
	case "attaching":
		return "attaching"
	case "detaching":
		return "detaching"
	}
	return "in-use"
}

// ipv4Count is what counts against the per-ENI IPv4 limit: every address
// including the primary, and one slot per /28 prefix.
func (e *eni) ipv4Count() int { return 1 + len(e.secondary) + len(e.prefixes) }
func (e *eni) ipv6Count() int { return len(e.ipv6) + len(e.ipv6Prefixes) }

func (e *eni) instanceID() string {
	if e.att == nil {
		return ""
	}
	return e.att.instanceID
}

// allPrefixes lists the ENI's addresses as host prefixes plus its prefixes.
func (e *eni) allPrefixes() []netip.Prefix {
	out := []netip.Prefix{netip.PrefixFrom(e.primaryIP, 32)}
	for _, a := range e.secondary {
		out = append(out, netip.PrefixFrom(a, 32))
	}
	out = append(out, e.prefixes...)
	for _, a := range e.ipv6 {
		out = append(out, netip.PrefixFrom(a, 128))
	}
	return append(out, e.ipv6Prefixes...)
}

func newWorld(s Scenario, now func() time.Time) (*world, error) {
	w := &world{
		now: now, region: s.Region, account: s.AccountID, azs: s.AvailabilityZones,
		vpcs: map[string]*vpc{}, subnets: map[string]*subnet{}, sgs: map[string]*secGroup{},
		instances: map[string]*instance{}, enis: map[string]*eni{},
		attachments: map[string]*eni{}, pending: map[string]*eni{}, seq: map[string]uint64{},
		assocs: map[string]*trunkAssoc{}, rules: map[string]*sgRule{}, launches: map[string]*launch{},
		disassocs: map[string]string{},
	}
	if w.region == "" {
		return nil, fmt.Errorf("scenario: region is required")
	}
	if w.account == "" {
		w.account = "123456789012"
	}
	pool := s.PublicIPv4Pool
	if pool == "" {
		pool = "198.51.100.0/24"
	}
	pp, err := netip.ParsePrefix(pool)
	if err != nil || !pp.Addr().Is4() {
		return nil, fmt.Errorf("scenario publicIpv4Pool %q: want an IPv4 CIDR", pool)
	}
	w.public = newV4Pool(pp)
	azSet := map[string]bool{}
	for _, az := range w.azs {
		azSet[az] = true
	}
	for i, vs := range s.VPCs {
		if err := w.addVPC(vs, azSet); err != nil {
			return nil, fmt.Errorf("scenario vpcs[%d]: %w", i, err)
		}
	}
	if len(w.azs) == 0 {
		for az := range azSet {
			w.azs = append(w.azs, az)
		}
		sort.Strings(w.azs)
	}
	for i, is := range s.Instances {
		if _, err := w.runInstance(is); err != nil {
			return nil, fmt.Errorf("scenario instances[%d] (%s): %w", i, is.ID, err)
		}
	}
	for i, es := range s.NetworkInterfaces {
		if err := w.addScenarioENI(es); err != nil {
			return nil, fmt.Errorf("scenario networkInterfaces[%d] (%s): %w", i, es.ID, err)
		}
	}
	return w, nil
}

func (w *world) addVPC(vs VPCSpec, azSet map[string]bool) error {
	id := vs.ID
	if err := vpcIDs.checkPreset(id); err != nil {
		return err
	}
	if id == "" {
		id = w.newID("vpc")
	}
	if w.idTaken(id) {
		return fmt.Errorf("duplicate id %s", id)
	}
	v := &vpc{id: id, tags: copyTags(vs.Tags)}
	for _, c := range append([]string{vs.CIDR}, vs.SecondaryCIDRs...) {
		p, err := netip.ParsePrefix(c)
		if err != nil || !p.Addr().Is4() || p.Masked() != p || p.Bits() < 16 || p.Bits() > 28 {
			return fmt.Errorf("cidr %q: want an IPv4 CIDR between /16 and /28", c)
		}
		for _, o := range v.cidrs {
			if o.Overlaps(p) {
				return fmt.Errorf("cidr %s overlaps %s", p, o)
			}
		}
		v.cidrs = append(v.cidrs, p)
	}
	if vs.IPv6CIDR != "" {
		p, err := netip.ParsePrefix(vs.IPv6CIDR)
		if err != nil || !p.Addr().Is6() || p.Bits() != 56 || p.Masked() != p {
			return fmt.Errorf("ipv6Cidr %q: want an IPv6 /56", vs.IPv6CIDR)
		}
		v.ipv6 = p
	}
	w.vpcs[id] = v
	for i, ss := range vs.Subnets {
		if err := w.addSubnet(v, ss, azSet); err != nil {
			return fmt.Errorf("subnets[%d]: %w", i, err)
		}
	}
	for i, gs := range vs.SecurityGroups {
		gid := gs.ID
		if err := groupIDs.checkPreset(gid); err != nil {
			return fmt.Errorf("securityGroups[%d]: %w", i, err)
		}
		if gid == "" {
			gid = w.newID("sg")
		}
		if w.idTaken(gid) {
			return fmt.Errorf("securityGroups[%d]: duplicate id %s", i, gid)
		}
		if gs.Name == "" {
			return fmt.Errorf("securityGroups[%d]: name is required", i)
		}
		w.sgs[gid] = &secGroup{id: gid, name: gs.Name, desc: gs.Description, vpcID: id, tags: map[string]string{}}
	}
	// rules after every group exists, so they may reference any of them
	for i, gs := range vs.SecurityGroups {
		for gid, g := range w.sgs {
			if g.vpcID == id && g.name == gs.Name && (gs.ID == "" || gs.ID == gid) {
				if err := w.scenarioRules(g, v, gs); err != nil {
					return fmt.Errorf("securityGroups[%d] (%s): %w", i, gid, err)
				}
			}
		}
	}
	return nil
}

func (w *world) addSubnet(v *vpc, ss SubnetSpec, azSet map[string]bool) error {
	id := ss.ID
	if err := subnetIDs.checkPreset(id); err != nil {
		return err
	}
	if id == "" {
		id = w.newID("subnet")
	}
	if w.idTaken(id) {
		return fmt.Errorf("duplicate id %s", id)
	}
	if ss.AZ == "" {
		return fmt.Errorf("az is required")
	}
	if len(w.azs) > 0 && !azSet[ss.AZ] {
		return fmt.Errorf("az %q is not one of availabilityZones", ss.AZ)
	}
	azSet[ss.AZ] = true
	p, err := netip.ParsePrefix(ss.CIDR)
	if err != nil || !p.Addr().Is4() || p.Masked() != p || p.Bits() > 28 {
		return fmt.Errorf("cidr %q: want an IPv4 CIDR of /28 or larger", ss.CIDR)
	}
	inVPC := false
	for _, c := range v.cidrs {
		if c.Bits() <= p.Bits() && c.Contains(p.Addr()) {
			inVPC = true
		}
	}
	if !inVPC {
		return fmt.Errorf("cidr %s is not within the VPC's CIDRs %v", p, v.cidrs)
	}
	for _, o := range w.subnets {
		if o.vpcID == v.id && o.cidr.Overlaps(p) {
			return fmt.Errorf("cidr %s overlaps subnet %s (%s)", p, o.id, o.cidr)
		}
	}
	sn := &subnet{id: id, vpcID: v.id, az: ss.AZ, cidr: p, mapPublic: ss.MapPublicIP, tags: copyTags(ss.Tags), v4: newV4Pool(p)}
	if ss.IPv6CIDR != "" {
		p6, err := netip.ParsePrefix(ss.IPv6CIDR)
		if err != nil || !p6.Addr().Is6() || p6.Bits() != 64 || p6.Masked() != p6 {
			return fmt.Errorf("ipv6Cidr %q: want an IPv6 /64", ss.IPv6CIDR)
		}
		if !v.ipv6.IsValid() || !v.ipv6.Contains(p6.Addr()) {
			return fmt.Errorf("ipv6Cidr %s is not within the VPC's IPv6 CIDR", p6)
		}
		sn.ipv6 = p6
	}
	// A subnet the scenario gives no ipv6Cidr has none, even in a VPC with
	// an IPv6 block: EC2 subnets get one only when it is associated
	// (docs/compatibility.md, "vpcsim: fidelity to EC2").
	if sn.ipv6.IsValid() {
		for _, o := range w.subnets {
			if o.ipv6.IsValid() && o.ipv6 == sn.ipv6 {
				return fmt.Errorf("ipv6Cidr %s is used by subnet %s", sn.ipv6, o.id)
			}
		}
		sn.v6 = newV6Pool(sn.ipv6)
	}
	w.subnets[id] = sn
	return nil
}

func (w *world) addScenarioENI(es ENISpec) error {
	if err := eniIDs.checkPreset(es.ID); err != nil {
		return err
	}
	if es.ID != "" && w.idTaken(es.ID) {
		return fmt.Errorf("duplicate id %s", es.ID)
	}
	e, err := w.createENI(createENIReq{
		ID: es.ID, SubnetID: es.Subnet, Description: es.Description, Groups: es.SecurityGroups,
		InterfaceType: es.InterfaceType, SecondaryCount: es.SecondaryIPCount, Tags: es.Tags,
	})
	if err != nil {
		return err
	}
	if es.AttachTo == "" {
		return nil
	}
	att, err := w.attachENI(e.id, es.AttachTo, es.DeviceIndex, es.NetworkCard, true)
	if err != nil {
		return err
	}
	att.deleteOnTermination = es.DeleteOnTermination
	return nil
}

// newID returns an unused id like "eni-0000000000000000a".
func (w *world) newID(prefix string) string {
	for {
		w.seq[prefix]++
		id := fmt.Sprintf("%s-%017x", prefix, w.seq[prefix])
		if !w.idTaken(id) {
			return id
		}
	}
}

func (w *world) idTaken(id string) bool {
	if _, ok := w.vpcs[id]; ok {
		return true
	}
	if _, ok := w.subnets[id]; ok {
		return true
	}
	if _, ok := w.sgs[id]; ok {
		return true
	}
	if _, ok := w.instances[id]; ok {
		return true
	}
	if _, ok := w.enis[id]; ok {
		return true
	}
	if _, ok := w.assocs[id]; ok {
		return true
	}
	if _, ok := w.rules[id]; ok {
		return true
	}
	_, ok := w.attachments[id]
	return ok
}

func (w *world) newMAC() string {
	w.macSeq++
	n := w.macSeq
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func (w *world) emit(e Event) {
	w.events = append(w.events, e)
	switch e := e.(type) {
	case InstanceRunning:
		w.touch(e.InstanceID)
	case InstanceTerminated:
		w.touch(e.InstanceID)
	case ENIAttached:
		w.touch(e.InstanceID)
	case ENIDetached:
		w.touch(e.InstanceID)
	case AddressesAssigned:
		w.touch(e.InstanceID)
		w.sgDirty = w.sgDirty || w.refsUsed()
	case AddressesUnassigned:
		w.touch(e.InstanceID)
		w.sgDirty = w.sgDirty || w.refsUsed()
	}
}

func (w *world) touch(instanceID string) {
	if instanceID == "" {
		return
	}
	if w.touched == nil {
		w.touched = map[string]bool{}
	}
	w.touched[instanceID] = true
}

func copyTags(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// settle completes attach/detach transitions that are due.
func (w *world) settle() {
	if len(w.pending) == 0 {
		return
	}
	now := w.now()
	ids := make([]string, 0, len(w.pending))
	for id, e := range w.pending {
		if !e.att.due.After(now) {
			ids = append(ids, id)
		}
	}
	// complete in due order so events are ordered like the changes
	sort.Slice(ids, func(i, j int) bool {
		a, b := w.pending[ids[i]].att, w.pending[ids[j]].att
		if !a.due.Equal(b.due) {
			return a.due.Before(b.due)
		}
		return ids[i] < ids[j]
	})
	for _, id := range ids {
		e := w.pending[id]
		delete(w.pending, id)
		switch e.att.status {
		case "attaching":
			w.completeAttach(e)
		case "detaching":
			w.completeDetach(e)
		}
	}
}

// nextDue is the earliest pending transition, or zero.
func (w *world) nextDue() time.Time {
	var t time.Time
	for _, e := range w.pending {
		if t.IsZero() || e.att.due.Before(t) {
			t = e.att.due
		}
	}
	return t
}
