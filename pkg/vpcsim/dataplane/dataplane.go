package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Well-known addresses of the simulated VPC, reachable from every node
// through its own eth0 (they live on the VPC namespace's loopback).
var (
	IMDSAddr = netip.MustParseAddrPort("169.254.169.254:80")
	EC2Addr  = netip.MustParseAddrPort("169.254.169.253:80")
	// DefaultInternetAddrs are the "internet" hosts (TEST-NET-3, only inside
	// the internet namespace).
	DefaultInternetAddrs = []netip.Addr{netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("203.0.113.20")}
)

// Transit link between the VPC and internet namespaces, from the
// benchmarking range (RFC 2544) so it never looks like a real network.
var (
	transitVPC  = netip.MustParsePrefix("198.18.0.1/30")
	transitInet = netip.MustParsePrefix("198.18.0.2/30")
)

const (
	defaultMTU = 9001
	// publicTable holds the VPC namespace's route to the internet; only
	// sources with a public IP get a rule that reaches it.
	publicTable    = 100
	publicRulePrio = 40000 // after main (32766): the VPC itself wins
	inetLinkVPC    = "inet"
	inetLinkInet   = "vpc"
)

// Service is an HTTP handler the VPC namespace serves on Addr (IMDS, the
// EC2 endpoint, ...). Addr's IP is added to the VPC namespace's loopback.
type Service struct {
	Name    string
	Addr    netip.AddrPort
	Handler http.Handler
}

// Config configures a Dataplane.
type Config struct {
	// RunID names the namespaces (NamePrefix+RunID+"-..."); NewRunID() if empty.
	RunID  string
	Logger *slog.Logger
	// MTU of every ENI link; 9001 (EC2's) if zero.
	MTU int
	// InternetAddrs run a whoami service in the internet namespace;
	// DefaultInternetAddrs if empty.
	InternetAddrs []netip.Addr
	// Services are served inside the VPC namespace.
	Services []Service
	// EchoAddrs run a whoami service inside the VPC namespace, e.g. a VPC
	// address standing for an in-VPC server that must see pods' own addresses.
	EchoAddrs []netip.Addr
}

// NIC describes an ENI being attached to an instance.
type NIC struct {
	ENIID       string
	MAC         net.HardwareAddr
	PrimaryIP   netip.Addr
	Subnet      netip.Prefix
	DeviceIndex int
	NetworkCard int // multicard.go
}

// Dataplane is a running VPC data plane. All methods are safe for
// concurrent use.
type Dataplane struct {
	log    *slog.Logger
	runID  string
	prefix string
	mtu    int

	mu       sync.Mutex
	closed   bool
	created  []string // pinned namespace paths, in creation order
	vpcPath  string
	inetPath string
	vpcNS    netns.NsHandle
	vpc      *netlink.Handle
	inet     *netlink.Handle
	inetNS   netns.NsHandle
	nodes    map[string]*node
	enis     map[string]*eni
	routers  map[netip.Addr]int // subnet router address -> ENIs using it
	nodeSeq  int
	svc      closers
	public   map[netip.Addr]netip.Addr // primary private IP -> public IP
	branches map[string]branch         // branch ENI id -> its trunk and VLAN
	hosted   map[string]netip.Addr     // ENI id -> address the VPC namespace serves (hosted.go)
	sg       sgState
	v6       *ipv6State // set by EnableIPv6 (ipv6.go)
}

type node struct {
	id      string
	seq     int
	path    string
	nsh     netns.NsHandle
	h       *netlink.Handle
	primary netip.Addr
	public  netip.Addr // zero when none
}

type eni struct {
	id       string
	node     string // empty while detached
	nic      NIC
	link     string // VPC-side link name while attached
	prefixes map[netip.Prefix]bool
}

// New builds the VPC and internet namespaces and starts the services. On
// error everything created so far is removed.
func New(cfg Config) (_ *Dataplane, err error) {
	if cfg.RunID == "" {
		cfg.RunID = NewRunID()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MTU == 0 {
		cfg.MTU = defaultMTU
	}
	if len(cfg.InternetAddrs) == 0 {
		cfg.InternetAddrs = DefaultInternetAddrs
	}
	d := &Dataplane{
		log:      cfg.Logger,
		runID:    cfg.RunID,
		prefix:   RunPrefix(cfg.RunID),
		mtu:      cfg.MTU,
		nodes:    map[string]*node{},
		enis:     map[string]*eni{},
		routers:  map[netip.Addr]int{},
		public:   map[netip.Addr]netip.Addr{},
		branches: map[string]branch{},
		hosted:   map[string]netip.Addr{},
		vpcNS:    -1,
		inetNS:   -1,
	}
	defer func() {
		if err != nil {
			_ = d.Close()
		}
	}()
	if d.vpcPath, d.vpcNS, d.vpc, err = d.newNS("vpc"); err != nil {
		return nil, err
	}
	if d.inetPath, d.inetNS, d.inet, err = d.newNS("inet"); err != nil {
		return nil, err
	}
	// Defaults are set before any ENI link exists so every link inherits
	// them: proxy ARP answers for addresses behind other links at once, and
	// strict reverse-path filtering is EC2's source/destination check.
	if err := sysctls(d.vpcPath, [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv4.conf.all.rp_filter", "0"},
		{"net.ipv4.conf.default.rp_filter", "1"},
		{"net.ipv4.conf.default.proxy_arp", "1"},
		{"net.ipv4.conf.all.send_redirects", "0"},
		{"net.ipv4.conf.default.send_redirects", "0"},
	}); err != nil {
		return nil, err
	}
	if err := d.buildTransit(); err != nil {
		return nil, err
	}
	if err := sysctls(d.vpcPath, [][2]string{{"net.ipv4.conf." + inetLinkVPC + ".rp_filter", "0"}}); err != nil {
		return nil, err
	}
	for _, a := range cfg.InternetAddrs {
		if err := addLoopback(d.inet, a); err != nil {
			return nil, fmt.Errorf("internet address %s: %w", a, err)
		}
		c, err := ServeWhoami(d.inetPath, netip.AddrPortFrom(a, WhoamiPort))
		if err != nil {
			return nil, err
		}
		d.svc.add(c)
	}
	for _, a := range cfg.EchoAddrs {
		if err := addLoopback(d.vpc, a); err != nil {
			return nil, fmt.Errorf("VPC echo address %s: %w", a, err)
		}
		c, err := ServeWhoami(d.vpcPath, netip.AddrPortFrom(a, WhoamiPort))
		if err != nil {
			return nil, err
		}
		d.svc.add(c)
	}
	for _, s := range cfg.Services {
		if s.Handler == nil {
			return nil, fmt.Errorf("service %q on %s: no handler", s.Name, s.Addr)
		}
		if err := addLoopback(d.vpc, s.Addr.Addr()); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("service %q address %s: %w", s.Name, s.Addr, err)
		}
		hs, err := serveHTTP(d.log, d.vpcPath, s.Addr, s.Handler)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", s.Name, err)
		}
		d.svc.add(hs)
	}
	d.log.Info("VPC data plane up", "run", d.runID, "vpc_ns", d.vpcPath, "internet_ns", d.inetPath)
	return d, nil
}

// RunID returns the run id; RunPrefix(RunID()) prefixes every namespace.
func (d *Dataplane) RunID() string { return d.runID }

// VPCNS returns the path of the VPC namespace.
func (d *Dataplane) VPCNS() string { return d.vpcPath }

// InternetNS returns the path of the internet namespace.
func (d *Dataplane) InternetNS() string { return d.inetPath }

// NodeNS returns the network namespace path of an instance.
func (d *Dataplane) NodeNS(instanceID string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.nodes[instanceID]
	if !ok {
		return "", fmt.Errorf("instance %q: not in the data plane", instanceID)
	}
	return n.path, nil
}

// newNS creates, pins and opens a namespace of this run, with lo up.
func (d *Dataplane) newNS(role string) (string, netns.NsHandle, *netlink.Handle, error) {
	path, err := createNamedNS(d.prefix + role)
	if err != nil {
		return "", -1, nil, err
	}
	d.created = append(d.created, path)
	nsh, err := netns.GetFromPath(path)
	if err != nil {
		return path, -1, nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		_ = nsh.Close()
		return path, -1, nil, fmt.Errorf("netlink handle in %s: %w", path, err)
	}
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		h.Close()
		_ = nsh.Close()
		return path, -1, nil, fmt.Errorf("bring lo up in %s: %w", path, err)
	}
	return path, nsh, h, nil
}

// buildTransit links the VPC and internet namespaces. The VPC's only
// default route is in publicTable, used by sources with a public IP.
func (d *Dataplane) buildTransit() error {
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: inetLinkVPC, MTU: d.mtu},
		PeerName:      inetLinkInet,
		PeerMTU:       uint32(d.mtu),
		PeerNamespace: netlink.NsFd(int(d.inetNS)),
	}
	if err := d.vpc.LinkAdd(veth); err != nil {
		return fmt.Errorf("create VPC-internet link: %w", err)
	}
	vl, _, err := d.addressTransit(transitVPC, transitInet, 0)
	if err != nil {
		return err
	}
	def := &netlink.Route{Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: transitInet.Addr().AsSlice(), LinkIndex: vl.Attrs().Index, Table: publicTable}
	if err := d.vpc.RouteAdd(def); err != nil {
		return fmt.Errorf("VPC internet route: %w", err)
	}
	return nil
}

// addressTransit puts vpcP and inetP on the VPC and internet ends of the
// transit link, brings both up and returns the two ends.
func (d *Dataplane) addressTransit(vpcP, inetP netip.Prefix, flags int) (vl, il netlink.Link, err error) {
	vl, err = d.vpc.LinkByName(inetLinkVPC)
	if err != nil {
		return nil, nil, fmt.Errorf("find VPC-internet link: %w", err)
	}
	il, err = d.inet.LinkByName(inetLinkInet)
	if err != nil {
		return nil, nil, fmt.Errorf("find internet-VPC link: %w", err)
	}
	for _, x := range []struct {
		h *netlink.Handle
		l netlink.Link
		p netip.Prefix
	}{{d.vpc, vl, vpcP}, {d.inet, il, inetP}} {
		if err := x.h.AddrAdd(x.l, &netlink.Addr{IPNet: ipNet(x.p), Flags: flags}); err != nil {
			return nil, nil, fmt.Errorf("address %s on transit link: %w", x.p, err)
		}
		if err := x.h.LinkSetUp(x.l); err != nil {
			return nil, nil, fmt.Errorf("bring transit link up: %w", err)
		}
	}
	return vl, il, nil
}

// AddNode creates the network namespace of an instance. With a valid
// publicIP the instance's primary address reaches the internet, translated
// 1:1 to publicIP as by an internet gateway. Its ENIs follow with AttachNIC.
func (d *Dataplane) AddNode(instanceID string, primaryIP, publicIP netip.Addr) error {
	if publicIP.IsValid() && (!publicIP.Is4() || !primaryIP.Is4()) {
		return fmt.Errorf("add node %s: public IP %v for primary %v: both must be IPv4", instanceID, publicIP, primaryIP)
	}
	if instanceID == "" {
		return errors.New("add node: empty instance id")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("add node: data plane closed")
	}
	if _, ok := d.nodes[instanceID]; ok {
		return nil
	}
	d.nodeSeq++
	n := &node{id: instanceID, seq: d.nodeSeq, primary: primaryIP, public: publicIP}
	var err error
	if n.path, n.nsh, n.h, err = d.newNS(instanceID); err != nil {
		return fmt.Errorf("add node %s: %w", instanceID, err)
	}
	d.nodes[instanceID] = n
	// As the AMI would: a node forwards for its pods.
	if err := sysctls(n.path, [][2]string{{"net.ipv4.ip_forward", "1"}}); err != nil {
		return fmt.Errorf("add node %s: %w", instanceID, err)
	}
	if err := d.nodeSysctlsV6(n); err != nil {
		return fmt.Errorf("add node %s: %w", instanceID, err)
	}
	if publicIP.IsValid() {
		if err := d.allowInternet(primaryIP, publicIP); err != nil {
			return fmt.Errorf("add node %s: %w", instanceID, err)
		}
	}
	d.log.Info("node added", "instance", instanceID, "netns", n.path, "primary_ip", primaryIP, "public_ip", publicIP)
	return nil
}

// allowInternet lets src reach the internet as pub, and the internet reach
// src through pub.
func (d *Dataplane) allowInternet(src, pub netip.Addr) error {
	r := netlink.NewRule()
	r.Src = ipNet(netip.PrefixFrom(src, 32))
	r.Table = publicTable
	r.Priority = publicRulePrio
	if err := d.vpc.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("internet rule for %s: %w", src, err)
	}
	il, err := d.inet.LinkByName(inetLinkInet)
	if err != nil {
		return fmt.Errorf("find internet-VPC link: %w", err)
	}
	back := &netlink.Route{Dst: ipNet(netip.PrefixFrom(pub, 32)), Gw: transitVPC.Addr().AsSlice(), LinkIndex: il.Attrs().Index}
	if err := d.inet.RouteReplace(back); err != nil {
		return fmt.Errorf("internet route back to %s: %w", pub, err)
	}
	d.public[src] = pub
	return applyIGW(int(d.vpcNS), natPairs(d.public))
}

func (d *Dataplane) denyInternet(src, pub netip.Addr) error {
	r := netlink.NewRule()
	r.Src = ipNet(netip.PrefixFrom(src, 32))
	r.Table = publicTable
	r.Priority = publicRulePrio
	var errs []error
	if err := d.vpc.RuleDel(r); err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("delete internet rule for %s: %w", src, err))
	}
	back := &netlink.Route{Dst: ipNet(netip.PrefixFrom(pub, 32))}
	if err := d.inet.RouteDel(back); err != nil && !errors.Is(err, unix.ESRCH) {
		errs = append(errs, fmt.Errorf("delete internet route to %s: %w", pub, err))
	}
	delete(d.public, src)
	errs = append(errs, applyIGW(int(d.vpcNS), natPairs(d.public)))
	return errors.Join(errs...)
}

// RemoveNode unplugs every ENI of the instance and deletes its namespace.
// Processes still running in it keep the namespace alive until they exit.
func (d *Dataplane) RemoveNode(instanceID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.nodes[instanceID]
	if !ok {
		return nil
	}
	var errs []error
	for _, e := range d.enis {
		if e.node == instanceID {
			errs = append(errs, d.unplug(e))
		}
	}
	if n.public.IsValid() {
		errs = append(errs, d.denyInternet(n.primary, n.public))
	}
	n.h.Close()
	_ = n.nsh.Close()
	errs = append(errs, deleteNamedNS(n.path))
	delete(d.nodes, instanceID)
	for i, p := range d.created {
		if p == n.path {
			d.created = append(d.created[:i], d.created[i+1:]...)
			break
		}
	}
	d.log.Info("node removed", "instance", instanceID)
	errs = append(errs, d.applySGLocked())
	return errors.Join(errs...)
}

// Close stops the services and removes every namespace of this run. It is
// safe to call more than once.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	// Listening sockets pin their namespace; close them first.
	errs := []error{d.svc.closeAll()}
	for _, n := range d.nodes {
		n.h.Close()
		_ = n.nsh.Close()
	}
	for _, h := range []*netlink.Handle{d.vpc, d.inet} {
		if h != nil {
			h.Close()
		}
	}
	for _, nsh := range []netns.NsHandle{d.vpcNS, d.inetNS} {
		if nsh >= 0 {
			_ = nsh.Close()
		}
	}
	d.vpc, d.inet, d.vpcNS, d.inetNS = nil, nil, -1, -1
	for i := len(d.created) - 1; i >= 0; i-- {
		errs = append(errs, deleteNamedNS(d.created[i]))
	}
	d.created = nil
	d.nodes = map[string]*node{}
	d.enis = map[string]*eni{}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close data plane %s: %w", d.runID, err)
	}
	return nil
}

func addLoopback(h *netlink.Handle, a netip.Addr) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	return h.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(a, a.BitLen()))})
}

func delLoopback(h *netlink.Handle, a netip.Addr) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.AddrDel(lo, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(a, a.BitLen()))}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("remove %s from lo: %w", a, err)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func bringLoUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}
