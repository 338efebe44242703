package vpcsim

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// XML shapes of EC2 responses; element names follow the SDK deserializers
// (aws-sdk-go-v2/service/ec2 deserializers.go).

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlGroup struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type xmlAssoc struct {
	PublicIP      string `xml:"publicIp"`
	PublicDNSName string `xml:"publicDnsName"`
	IPOwnerID     string `xml:"ipOwnerId"`
}

type xmlPrivateIP struct {
	PrivateIPAddress string    `xml:"privateIpAddress"`
	PrivateDNSName   string    `xml:"privateDnsName"`
	Primary          bool      `xml:"primary"`
	Association      *xmlAssoc `xml:"association,omitempty"`
}

type xmlIPv6 struct {
	IPv6Address   string `xml:"ipv6Address"`
	IsPrimaryIPv6 bool   `xml:"isPrimaryIpv6"`
}

type xmlIPv4Prefix struct {
	IPv4Prefix string `xml:"ipv4Prefix"`
}

type xmlIPv6Prefix struct {
	IPv6Prefix string `xml:"ipv6Prefix"`
}

type xmlAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId,omitempty"`
	InstanceOwnerID     string `xml:"instanceOwnerId,omitempty"`
	DeviceIndex         int    `xml:"deviceIndex"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

// xmlENICore is what both shapes of a network interface carry: the
// DescribeNetworkInterfaces item (xmlENI) and the DescribeInstances one.
type xmlENICore struct {
	NetworkInterfaceID string         `xml:"networkInterfaceId"`
	SubnetID           string         `xml:"subnetId"`
	VpcID              string         `xml:"vpcId"`
	Description        string         `xml:"description"`
	OwnerID            string         `xml:"ownerId"`
	Status             string         `xml:"status"`
	MacAddress         string         `xml:"macAddress"`
	PrivateIPAddress   string         `xml:"privateIpAddress"`
	PrivateDNSName     string         `xml:"privateDnsName"`
	SourceDestCheck    bool           `xml:"sourceDestCheck"`
	InterfaceType      string         `xml:"interfaceType"`
	Groups             []xmlGroup     `xml:"groupSet>item"`
	Attachment         *xmlAttachment `xml:"attachment,omitempty"`
	Association        *xmlAssoc      `xml:"association,omitempty"`
	PrivateIPs         []xmlPrivateIP `xml:"privateIpAddressesSet>item"`
	// EC2 sends the prefix sets only when there are prefixes, the IPv6
	// address set (and an ENI's tagSet) always (TestEmptySetsAreSentAsEC2SendsThem)
	IPv4Prefixes  *xmlOptSet[xmlIPv4Prefix] `xml:"ipv4PrefixSet,omitempty"`
	IPv6Addresses []xmlIPv6                 `xml:"ipv6AddressesSet>item"`
	IPv6Prefixes  *xmlOptSet[xmlIPv6Prefix] `xml:"ipv6PrefixSet,omitempty"`
}

// xmlOptSet is a set EC2 leaves out of an answer when it is empty: a nil
// one writes nothing, where an empty slice field writes <name></name>,
// which the SDK reads as an empty set rather than none.
type xmlOptSet[T any] struct {
	Items []T `xml:"item"`
}

func optSet[T any](items []T) *xmlOptSet[T] {
	if len(items) == 0 {
		return nil
	}
	return &xmlOptSet[T]{Items: items}
}

type xmlENI struct {
	xmlENICore
	AvailabilityZone string   `xml:"availabilityZone"`
	RequesterManaged bool     `xml:"requesterManaged"`
	TagSet           []xmlTag `xml:"tagSet>item"`
}

func tagsXML(m map[string]string) []xmlTag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]xmlTag, 0, len(keys))
	for _, k := range keys {
		out = append(out, xmlTag{Key: k, Value: m[k]})
	}
	return out
}

func ec2Time(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (s *Sim) groupsXML(w *world, ids []string) []xmlGroup {
	out := make([]xmlGroup, 0, len(ids))
	for _, id := range ids {
		g := xmlGroup{GroupID: id}
		if sg, ok := w.sgs[id]; ok {
			g.GroupName = sg.name
		}
		out = append(out, g)
	}
	return out
}

func dnsName(a netip.Addr, region string) string {
	return hostname(a.String(), region)
}

func (s *Sim) eniXML(w *world, v ENIView) xmlENI {
	x := xmlENI{
		xmlENICore: xmlENICore{
			NetworkInterfaceID: v.ID, SubnetID: v.SubnetID, VpcID: v.VPCID,
			Description: v.Description, OwnerID: w.account, Status: v.Status, MacAddress: v.MAC,
			PrivateIPAddress: v.PrimaryIP.String(), PrivateDNSName: dnsName(v.PrimaryIP, w.region),
			SourceDestCheck: v.SourceDestCheck, InterfaceType: v.InterfaceType, Groups: s.groupsXML(w, v.Groups),
		},
		AvailabilityZone: v.AZ,
		TagSet:           tagsXML(v.Tags),
	}
	var assoc *xmlAssoc
	if v.PublicIP.IsValid() {
		assoc = &xmlAssoc{PublicIP: v.PublicIP.String(), IPOwnerID: "amazon"}
		x.Association = assoc
	}
	x.PrivateIPs = append(x.PrivateIPs, xmlPrivateIP{PrivateIPAddress: v.PrimaryIP.String(), PrivateDNSName: dnsName(v.PrimaryIP, w.region), Primary: true, Association: assoc})
	for _, a := range v.SecondaryIPs {
		x.PrivateIPs = append(x.PrivateIPs, xmlPrivateIP{PrivateIPAddress: a.String(), PrivateDNSName: dnsName(a, w.region)})
	}
	var v4p []xmlIPv4Prefix
	for _, p := range v.Prefixes {
		v4p = append(v4p, xmlIPv4Prefix{IPv4Prefix: p.String()})
	}
	x.IPv4Prefixes = optSet(v4p)
	for _, a := range v.IPv6 {
		x.IPv6Addresses = append(x.IPv6Addresses, xmlIPv6{IPv6Address: a.String()})
	}
	var v6p []xmlIPv6Prefix
	for _, p := range v.IPv6Prefixes {
		v6p = append(v6p, xmlIPv6Prefix{IPv6Prefix: p.String()})
	}
	x.IPv6Prefixes = optSet(v6p)
	if a := v.Attachment; a != nil {
		att := &xmlAttachment{
			AttachmentID: a.ID, InstanceID: a.InstanceID, InstanceOwnerID: w.account, DeviceIndex: a.DeviceIndex,
			NetworkCardIndex: a.NetworkCard, Status: a.Status, DeleteOnTermination: a.DeleteOnTermination,
		}
		if e, ok := w.enis[v.ID]; ok && e.att != nil {
			att.AttachTime = ec2Time(e.att.attachTime)
		}
		x.Attachment = att
	}
	return x
}

type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

func stateXML(name string) xmlState {
	codes := map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}
	return xmlState{Code: codes[name], Name: name}
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type xmlMetadataOptions struct {
	State                string `xml:"state"`
	HTTPTokens           string `xml:"httpTokens"`
	HTTPPutHopLimit      int    `xml:"httpPutResponseHopLimit"`
	HTTPEndpoint         string `xml:"httpEndpoint"`
	HTTPProtocolIPv6     string `xml:"httpProtocolIpv6"`
	InstanceMetadataTags string `xml:"instanceMetadataTags"`
}

func metadataOptionsXML(v InstanceView) xmlMetadataOptions {
	tokens := "optional"
	if v.IMDSv1Disabled {
		tokens = "required"
	}
	return xmlMetadataOptions{
		State: "applied", HTTPTokens: tokens, HTTPPutHopLimit: v.IMDSHopLimit, HTTPEndpoint: "enabled",
		HTTPProtocolIPv6: "disabled", InstanceMetadataTags: "disabled",
	}
}

type xmlInstance struct {
	InstanceID         string             `xml:"instanceId"`
	ImageID            string             `xml:"imageId"`
	InstanceState      xmlState           `xml:"instanceState"`
	PrivateDNSName     string             `xml:"privateDnsName"`
	DNSName            string             `xml:"dnsName"`
	AmiLaunchIndex     int                `xml:"amiLaunchIndex"`
	InstanceType       string             `xml:"instanceType"`
	LaunchTime         string             `xml:"launchTime"`
	Placement          xmlPlacement       `xml:"placement"`
	SubnetID           string             `xml:"subnetId,omitempty"`
	VpcID              string             `xml:"vpcId,omitempty"`
	PrivateIPAddress   string             `xml:"privateIpAddress,omitempty"`
	IPAddress          string             `xml:"ipAddress,omitempty"`
	SourceDestCheck    bool               `xml:"sourceDestCheck"`
	Groups             []xmlGroup         `xml:"groupSet>item"`
	Architecture       string             `xml:"architecture"`
	RootDeviceType     string             `xml:"rootDeviceType"`
	VirtualizationType string             `xml:"virtualizationType"`
	Hypervisor         string             `xml:"hypervisor"`
	TagSet             []xmlTag           `xml:"tagSet>item"`
	MetadataOptions    xmlMetadataOptions `xml:"metadataOptions"`
	NetworkInterfaces  []xmlENICore       `xml:"networkInterfaceSet>item"`
	ClientToken        string             `xml:"clientToken,omitempty"`
}

func (s *Sim) instanceXML(w *world, v InstanceView) xmlInstance {
	in := w.instances[v.ID]
	hv := "xen" // what DescribeInstances reports for Nitro too
	x := xmlInstance{
		InstanceID: v.ID, ImageID: "ami-0123456789abcdef0", InstanceState: stateXML(v.State),
		InstanceType: v.Type, LaunchTime: ec2Time(in.launched),
		Placement: xmlPlacement{AvailabilityZone: v.AZ, Tenancy: "default"}, SourceDestCheck: true,
		Groups: s.groupsXML(w, v.SecurityGroups), Architecture: in.typ.Arch, RootDeviceType: "ebs",
		VirtualizationType: "hvm", Hypervisor: hv, TagSet: tagsXML(v.Tags),
		MetadataOptions: metadataOptionsXML(v), ClientToken: in.token,
	}
	if v.State != "running" {
		return x
	}
	x.SubnetID, x.VpcID = v.SubnetID, v.VPCID
	x.PrivateIPAddress = v.PrimaryIP.String()
	x.PrivateDNSName = dnsName(v.PrimaryIP, w.region)
	if v.PublicIP.IsValid() {
		x.IPAddress = v.PublicIP.String()
	}
	for _, ev := range v.ENIs {
		e := s.eniXML(w, ev)
		att := e.Attachment
		att.InstanceID, att.InstanceOwnerID = "", "" // not part of the instance-side shape
		x.NetworkInterfaces = append(x.NetworkInterfaces, e.xmlENICore)
	}
	return x
}

type xmlCard struct {
	NetworkCardIndex         int    `xml:"networkCardIndex"`
	MaximumNetworkInterfaces int    `xml:"maximumNetworkInterfaces"`
	NetworkPerformance       string `xml:"networkPerformance"`
}

type xmlNetworkInfo struct {
	NetworkPerformance        string    `xml:"networkPerformance"`
	MaximumNetworkInterfaces  int       `xml:"maximumNetworkInterfaces"`
	MaximumNetworkCards       int       `xml:"maximumNetworkCards"`
	DefaultNetworkCardIndex   int       `xml:"defaultNetworkCardIndex"`
	NetworkCards              []xmlCard `xml:"networkCards>item"`
	IPv4AddressesPerInterface int       `xml:"ipv4AddressesPerInterface"`
	IPv6AddressesPerInterface int       `xml:"ipv6AddressesPerInterface"`
	IPv6Supported             bool      `xml:"ipv6Supported"`
	EnaSupport                string    `xml:"enaSupport"`
	EfaSupported              bool      `xml:"efaSupported"`
}

type xmlInstanceType struct {
	InstanceType      string   `xml:"instanceType"`
	CurrentGeneration bool     `xml:"currentGeneration"`
	BareMetal         bool     `xml:"bareMetal"`
	Hypervisor        string   `xml:"hypervisor,omitempty"`
	Architectures     []string `xml:"processorInfo>supportedArchitectures>item"`
	VCPUs             struct {
		DefaultVCpus int `xml:"defaultVCpus"`
	} `xml:"vCpuInfo"`
	Memory struct {
		SizeInMiB int `xml:"sizeInMiB"`
	} `xml:"memoryInfo"`
	NetworkInfo xmlNetworkInfo `xml:"networkInfo"`
}

func instanceTypeXML(t InstanceType) xmlInstanceType {
	x := xmlInstanceType{
		InstanceType: t.Name, CurrentGeneration: t.Hypervisor != "xen", BareMetal: t.BareMetal,
		Hypervisor: t.Hypervisor, Architectures: []string{t.Arch},
	}
	x.VCPUs.DefaultVCpus = t.VCPUs
	x.Memory.SizeInMiB = t.MemoryMiB
	ena := "supported"
	if strings.HasPrefix(t.Name, "t2.") {
		ena = "unsupported"
	}
	perf := "Up to 10 Gigabit"
	if t.VCPUs >= 32 {
		perf = strconv.Itoa(t.VCPUs/4) + " Gigabit"
	}
	x.NetworkInfo = xmlNetworkInfo{
		NetworkPerformance: perf, MaximumNetworkInterfaces: t.MaxENIs, MaximumNetworkCards: len(t.Cards),
		DefaultNetworkCardIndex: t.DefaultCard, IPv4AddressesPerInterface: t.IPv4PerENI,
		IPv6AddressesPerInterface: t.IPv6PerENI, IPv6Supported: t.IPv6PerENI > 0, EnaSupport: ena,
	}
	for _, c := range t.Cards {
		x.NetworkInfo.NetworkCards = append(x.NetworkInfo.NetworkCards, xmlCard{NetworkCardIndex: c.Index, MaximumNetworkInterfaces: c.MaxENIs, NetworkPerformance: perf})
	}
	return x
}

type xmlCidrState struct {
	State string `xml:"state"`
}

type xmlSubnetIPv6Assoc struct {
	AssociationID string       `xml:"associationId"`
	IPv6CidrBlock string       `xml:"ipv6CidrBlock"`
	State         xmlCidrState `xml:"ipv6CidrBlockState"`
}

type xmlSubnet struct {
	SubnetID                string               `xml:"subnetId"`
	SubnetArn               string               `xml:"subnetArn"`
	State                   string               `xml:"state"`
	VpcID                   string               `xml:"vpcId"`
	OwnerID                 string               `xml:"ownerId"`
	CidrBlock               string               `xml:"cidrBlock"`
	AvailableIPAddressCount int                  `xml:"availableIpAddressCount"`
	AvailabilityZone        string               `xml:"availabilityZone"`
	DefaultForAz            bool                 `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool                 `xml:"mapPublicIpOnLaunch"`
	AssignIPv6OnCreation    bool                 `xml:"assignIpv6AddressOnCreation"`
	IPv6Assocs              []xmlSubnetIPv6Assoc `xml:"ipv6CidrBlockAssociationSet>item"`
	TagSet                  *xmlOptSet[xmlTag]   `xml:"tagSet,omitempty"` // none for an untagged subnet, as EC2
}

type xmlVpcCidrAssoc struct {
	AssociationID string       `xml:"associationId"`
	CidrBlock     string       `xml:"cidrBlock"`
	State         xmlCidrState `xml:"cidrBlockState"`
}

type xmlVpcIPv6Assoc struct {
	AssociationID string       `xml:"associationId"`
	IPv6CidrBlock string       `xml:"ipv6CidrBlock"`
	State         xmlCidrState `xml:"ipv6CidrBlockState"`
}

type xmlVpc struct {
	VpcID           string            `xml:"vpcId"`
	OwnerID         string            `xml:"ownerId"`
	State           string            `xml:"state"`
	CidrBlock       string            `xml:"cidrBlock"`
	CidrAssocs      []xmlVpcCidrAssoc `xml:"cidrBlockAssociationSet>item"`
	IPv6Assocs      []xmlVpcIPv6Assoc `xml:"ipv6CidrBlockAssociationSet>item"`
	InstanceTenancy string            `xml:"instanceTenancy"`
	IsDefault       bool              `xml:"isDefault"`
	TagSet          []xmlTag          `xml:"tagSet>item"`
}

type xmlSecurityGroup struct {
	OwnerID          string   `xml:"ownerId"`
	GroupID          string   `xml:"groupId"`
	GroupName        string   `xml:"groupName"`
	GroupDescription string   `xml:"groupDescription"`
	VpcID            string   `xml:"vpcId"`
	TagSet           []xmlTag `xml:"tagSet>item"`
	// IpPermissions / IpPermissionsEgress: the rules, grouped by protocol
	// and port range
	Ingress []xmlIPPermission `xml:"ipPermissions>item"`
	Egress  []xmlIPPermission `xml:"ipPermissionsEgress>item"`
	Arn     string            `xml:"securityGroupArn"`
}
