package awsutils

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// Metadata reads the instance metadata service (IMDSv2, with the SDK's
// token handling and retries). It is safe for concurrent use.
type Metadata struct {
	c   *imds.Client
	obs Observer // nil: none
}

// NewMetadata builds the IMDS adapter. cfg.IMDSEndpoint overrides the
// endpoint; otherwise the SDK default applies, honouring
// AWS_EC2_METADATA_SERVICE_ENDPOINT.
func NewMetadata(cfg Config) (*Metadata, error) {
	if cfg.IMDSEndpoint != "" {
		probe := Config{IMDSEndpoint: cfg.IMDSEndpoint}
		probe.Defaults()
		if err := probe.Validate(); err != nil {
			return nil, fmt.Errorf("awsutils: invalid config: %w", err)
		}
	}
	c := imds.New(imds.Options{
		Endpoint: cfg.IMDSEndpoint,
		Retryer:  retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 5 }),
	})
	return &Metadata{c: c, obs: cfg.Observer}, nil
}

// Identity is the instance's identity as IMDS reports it.
type Identity struct {
	InstanceID   string
	InstanceType string
	Region       string
	AZ           string
	AccountID    string
	PrimaryMAC   string
	LocalIPv4    netip.Addr
	// PrimaryIPv6 is the zero Addr when the instance has no IPv6 address.
	PrimaryIPv6 netip.Addr
}

// ENIMetadata is one ENI as IMDS lists it under network/interfaces/macs.
type ENIMetadata struct {
	MAC   string
	ENIID string
	// Primary is true for the instance's primary ENI (its MAC is IMDS "mac").
	Primary bool
	// DeviceNumber is forced to 0 for the primary MAC (as upstream does).
	DeviceNumber int
	// NetworkCard is 0 unless IMDS lists network-card for the MAC.
	NetworkCard     int
	SubnetID        string
	SubnetIPv4CIDR  netip.Prefix
	SubnetIPv6CIDRs []netip.Prefix
	VPCID           string
	VPCIPv4CIDRs    []netip.Prefix
	VPCIPv6CIDRs    []netip.Prefix
	SecurityGroups  []string
	// IPv4s lists the primary address first.
	IPv4s        []netip.Addr
	IPv4Prefixes []netip.Prefix
	IPv6s        []netip.Addr
	IPv6Prefixes []netip.Prefix
}

// Identity reads the instance-identity document, the primary MAC, the
// primary IPv4 and (if any) the primary IPv6 address.
func (m *Metadata) Identity(ctx context.Context) (Identity, error) {
	doc, err := m.c.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("IMDS instance-identity document: %w", err)
	}
	id := Identity{
		InstanceID:   doc.InstanceID,
		InstanceType: doc.InstanceType,
		Region:       doc.Region,
		AZ:           doc.AvailabilityZone,
		AccountID:    doc.AccountID,
	}
	if id.InstanceID == "" || id.Region == "" {
		return Identity{}, fmt.Errorf("IMDS instance-identity document lacks instanceId or region: %+v", doc)
	}
	if id.PrimaryMAC, err = m.get(ctx, "mac"); err != nil {
		return Identity{}, err
	}
	ip, err := m.get(ctx, "local-ipv4")
	if err != nil {
		return Identity{}, err
	}
	if id.LocalIPv4, err = parseAddr("local-ipv4", ip); err != nil {
		return Identity{}, err
	}
	v6, err := m.getOptional(ctx, "ipv6")
	if err != nil {
		return Identity{}, err
	}
	if v6 != "" {
		if id.PrimaryIPv6, err = parseAddr("ipv6", v6); err != nil {
			return Identity{}, err
		}
	}
	return id, nil
}

// InstanceType reads the instance type alone, for a caller that needs no
// addresses (cmd/max-pods): Identity also requires mac and local-ipv4,
// which an IPv6-only node lacks.
func (m *Metadata) InstanceType(ctx context.Context) (string, error) {
	t, err := m.get(ctx, "instance-type")
	if err != nil {
		return "", err
	}
	if t == "" {
		return "", errors.New("IMDS instance-type is empty")
	}
	return t, nil
}

// Region reads the region from the instance-identity document alone.
func (m *Metadata) Region(ctx context.Context) (string, error) {
	doc, err := m.c.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		return "", fmt.Errorf("IMDS instance-identity document: %w", err)
	}
	if doc.Region == "" {
		return "", fmt.Errorf("IMDS instance-identity document names no region: %+v", doc)
	}
	return doc.Region, nil
}

// MACs lists the MAC addresses of the ENIs IMDS currently shows.
func (m *Metadata) MACs(ctx context.Context) ([]string, error) {
	s, err := m.get(ctx, "network/interfaces/macs/")
	if err != nil {
		return nil, err
	}
	return dirEntries(s), nil
}

// ENIs reads every ENI IMDS shows, ordered by network card and device
// number (the primary ENI first). An ENI that vanishes while it is read is
// left out. IMDS lags EC2 by up to seconds: a just-attached ENI or address
// may be missing.
func (m *Metadata) ENIs(ctx context.Context) ([]ENIMetadata, error) {
	primary, err := m.get(ctx, "mac")
	if err != nil {
		return nil, err
	}
	macs, err := m.MACs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ENIMetadata, 0, len(macs))
	for _, mac := range macs {
		eni, err := m.eni(ctx, mac, mac == primary)
		if errors.Is(err, errVanished) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, eni)
	}
	slices.SortFunc(out, func(a, b ENIMetadata) int {
		return cmp.Or(cmp.Compare(a.NetworkCard, b.NetworkCard), cmp.Compare(a.DeviceNumber, b.DeviceNumber), cmp.Compare(a.MAC, b.MAC))
	})
	return out, nil
}

// ENI reads one ENI by MAC. It returns an error wrapping ErrNotInMetadata
// when IMDS does not (yet) list the MAC.
func (m *Metadata) ENI(ctx context.Context, mac string) (ENIMetadata, error) {
	primary, err := m.get(ctx, "mac")
	if err != nil {
		return ENIMetadata{}, err
	}
	eni, err := m.eni(ctx, mac, mac == primary)
	if errors.Is(err, errVanished) {
		return ENIMetadata{}, fmt.Errorf("MAC %s: %w", mac, ErrNotInMetadata)
	}
	return eni, err
}

// ErrNotInMetadata: IMDS does not list the ENI (not attached, or not yet).
var ErrNotInMetadata = errors.New("not listed in instance metadata")

var errVanished = errors.New("mac vanished from IMDS")

func (m *Metadata) eni(ctx context.Context, mac string, primary bool) (ENIMetadata, error) {
	base := "network/interfaces/macs/" + mac + "/"
	list, err := m.getOptional(ctx, base)
	if err != nil {
		return ENIMetadata{}, err
	}
	if list == "" {
		return ENIMetadata{}, errVanished
	}
	fields := map[string]bool{}
	for _, f := range dirEntries(list) {
		fields[f] = true
	}
	// Read a field only if IMDS lists it; a listed field that then 404s is
	// read as empty (IMDS updates its tree non-atomically).
	read := func(name string) (string, error) {
		if !fields[name] {
			return "", nil
		}
		return m.getOptional(ctx, base+name)
	}

	eni := ENIMetadata{MAC: mac, Primary: primary}
	var errs []error
	str := func(name string, dst *string, required bool) {
		v, err := read(name)
		if err != nil {
			errs = append(errs, err)
			return
		}
		if v == "" && required {
			errs = append(errs, fmt.Errorf("IMDS %s%s is missing", base, name))
		}
		*dst = v
	}
	integer := func(name string, dst *int) {
		v, err := read(name)
		if err != nil || v == "" {
			errs = append(errs, err)
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("IMDS %s%s: %q is not an integer", base, name, v))
			return
		}
		*dst = n
	}
	addrs := func(name string, dst *[]netip.Addr) {
		v, err := read(name)
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, s := range lines(v) {
			a, err := parseAddr(base+name, s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			*dst = append(*dst, a)
		}
	}
	prefixes := func(name string, dst *[]netip.Prefix) {
		v, err := read(name)
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, s := range lines(v) {
			p, err := parsePrefix(base+name, s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			*dst = append(*dst, p)
		}
	}

	str("interface-id", &eni.ENIID, true)
	str("subnet-id", &eni.SubnetID, true)
	str("vpc-id", &eni.VPCID, true)
	if !primary {
		integer("device-number", &eni.DeviceNumber)
	}
	integer("network-card", &eni.NetworkCard)
	var subnet4 []netip.Prefix
	prefixes("subnet-ipv4-cidr-block", &subnet4)
	if len(subnet4) > 0 {
		eni.SubnetIPv4CIDR = subnet4[0]
	}
	prefixes("subnet-ipv6-cidr-blocks", &eni.SubnetIPv6CIDRs)
	prefixes("vpc-ipv4-cidr-blocks", &eni.VPCIPv4CIDRs)
	prefixes("vpc-ipv6-cidr-blocks", &eni.VPCIPv6CIDRs)
	var sgs string
	str("security-group-ids", &sgs, false)
	eni.SecurityGroups = lines(sgs)
	addrs("local-ipv4s", &eni.IPv4s)
	prefixes("ipv4-prefix", &eni.IPv4Prefixes)
	addrs("ipv6s", &eni.IPv6s)
	prefixes("ipv6-prefix", &eni.IPv6Prefixes)
	if err := errors.Join(errs...); err != nil {
		return ENIMetadata{}, err
	}
	return eni, nil
}

// VPCIPv4CIDRs reads the VPC's IPv4 CIDR blocks as seen from one ENI.
func (m *Metadata) VPCIPv4CIDRs(ctx context.Context, mac string) ([]netip.Prefix, error) {
	return m.prefixList(ctx, "network/interfaces/macs/"+mac+"/vpc-ipv4-cidr-blocks")
}

// VPCIPv6CIDRs reads the VPC's IPv6 CIDR blocks as seen from one ENI.
func (m *Metadata) VPCIPv6CIDRs(ctx context.Context, mac string) ([]netip.Prefix, error) {
	return m.prefixList(ctx, "network/interfaces/macs/"+mac+"/vpc-ipv6-cidr-blocks")
}

// SecurityGroups reads the security groups of one ENI.
func (m *Metadata) SecurityGroups(ctx context.Context, mac string) ([]string, error) {
	v, err := m.get(ctx, "network/interfaces/macs/"+mac+"/security-group-ids")
	if err != nil {
		return nil, err
	}
	return lines(v), nil
}

func (m *Metadata) prefixList(ctx context.Context, path string) ([]netip.Prefix, error) {
	v, err := m.getOptional(ctx, path)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, s := range lines(v) {
		p, err := parsePrefix(path, s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// get reads one metadata path; a 404 is an error.
func (m *Metadata) get(ctx context.Context, path string) (string, error) {
	v, err := m.read(ctx, path)
	if err != nil {
		m.failed(path, err)
	}
	return v, err
}

// failed counts a failed read as upstream does (imds_names.go).
func (m *Metadata) failed(path string, err error) {
	if api := imdsErrorAPI(path, err); api != "" && m.obs != nil {
		m.obs.ObserveAPIError(api, codeIMDSRequest)
	}
}

func (m *Metadata) read(ctx context.Context, path string) (string, error) {
	start := time.Now()
	out, err := m.c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
	if m.obs != nil {
		m.obs.ObserveIMDSRead(time.Since(start), err != nil)
	}
	if err != nil {
		return "", fmt.Errorf("IMDS %s: %w", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	if err != nil {
		return "", fmt.Errorf("IMDS %s: %w: %w", path, errIMDSBody, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// getOptional reads a path that may legitimately be absent: 404 gives "".
func (m *Metadata) getOptional(ctx context.Context, path string) (string, error) {
	v, err := m.read(ctx, path)
	if err != nil && httpStatusAny(err) == 404 {
		return "", nil
	}
	if err != nil {
		m.failed(path, err)
	}
	return v, err
}

func httpStatusAny(err error) int {
	var se interface{ HTTPStatusCode() int }
	if errors.As(err, &se) {
		return se.HTTPStatusCode()
	}
	return 0
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// dirEntries lists a metadata "directory", dropping trailing slashes.
func dirEntries(s string) []string {
	out := lines(s)
	for i, l := range out {
		out[i] = strings.TrimSuffix(l, "/")
	}
	return out
}

func parseAddr(what, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s: bad IP address %q: %w", what, s, err)
	}
	return a, nil
}

func parsePrefix(what, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s: bad CIDR %q: %w", what, s, err)
	}
	return p, nil
}

// parseEach parses the address or prefix that str reads from each item:
// what parses is returned (nil for none), what does not is reported.
func parseEach[S, T any](what string, items []S, str func(S) string, parse func(what, s string) (T, error)) ([]T, error) {
	var out []T
	var errs []error
	for _, it := range items {
		v, err := parse(what, str(it))
		errs = append(errs, err)
		if err == nil {
			out = append(out, v)
		}
	}
	return out, errors.Join(errs...)
}
