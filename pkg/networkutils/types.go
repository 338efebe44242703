package networkutils

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Network applies host networking in the calling thread's network namespace.
// The zero value is not usable; call New.
type Network struct {
	log *slog.Logger

	// linkPatience bounds LinkByMAC's wait for a hot-plugged ENI (upstream
	// waits 5 × 3 s too, but looks only every 3 s: a link that appears
	// just after a look costs a pod up to 3 s). The kernel's link
	// notification ends the wait at once; linkFirstPoll, doubling up to
	// linkMaxPoll, paces the looks should a notification be lost.
	linkPatience  time.Duration
	linkFirstPoll time.Duration
	linkMaxPoll   time.Duration

	// hostMu serialises ReconcileHost: two concurrent diffs would fight.
	hostMu sync.Mutex

	// xtablesPatience bounds how long one ReconcileHost waits for the
	// xtables lock another process (kube-proxy, a user's iptables) holds;
	// the next reconcile tries again.
	xtablesPatience time.Duration
}

// New returns a Network that logs to log (nil means discard).
func New(log *slog.Logger) *Network {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Network{log: log, linkPatience: 15 * time.Second, linkFirstPoll: 20 * time.Millisecond, linkMaxPoll: time.Second,
		xtablesPatience: 30 * time.Second}
}

// Link is the part of a kernel link ipamd cares about.
type Link struct {
	Name  string
	Index int
	MAC   net.HardwareAddr
	MTU   int
}

// ENI describes a secondary ENI to wire on the node.
type ENI struct {
	MAC          net.HardwareAddr
	PrimaryIP    netip.Addr   // the ENI's primary private address (IPv4 or IPv6)
	Subnet       netip.Prefix // the ENI's subnet CIDR
	DeviceNumber int          // EC2 device index; 0 is the primary ENI and is refused
	NetworkCard  int
	MTU          int  // 0 means DefaultMTU
	Trunk        bool // trunk ENIs get no "from <eniIP>" rule
}

// DefaultMTU is AWS_VPC_ENI_MTU's default.
const DefaultMTU = 9001

// DefaultConnmark is AWS_VPC_K8S_CNI_CONNMARK's default.
const DefaultConnmark uint32 = 0x80

// RandomizeSNAT is AWS_VPC_K8S_CNI_RANDOMIZESNAT.
type RandomizeSNAT string

const (
	RandomizePRNG       RandomizeSNAT = "prng"       // --random-fully (falls back to --random)
	RandomizeHashRandom RandomizeSNAT = "hashrandom" // --random
	RandomizeNone       RandomizeSNAT = "none"       // no flag
)

// ConnmarkBackend selects where the "snat-mark" connmark rules live.
type ConnmarkBackend string

const (
	// ConnmarkAuto chooses as upstream does: `iptables --version` mentioning
	// "legacy" selects the iptables backend, anything else native nftables.
	ConnmarkAuto     ConnmarkBackend = ""
	ConnmarkIPTables ConnmarkBackend = "iptables"
	ConnmarkNFTables ConnmarkBackend = "nftables"
)

// HostConfig is the whole desired host-wide state. Zero values of
// RandomizeSNAT, ENIMTU, Connmark and IPTablesPath mean their defaults.
// Booleans are taken as given: the caller maps upstream's defaults (e.g.
// AWS_VPC_CNI_NODE_PORT_SUPPORT defaults to true there).
type HostConfig struct {
	PrimaryMAC           net.HardwareAddr
	PrimaryIPv4          netip.Addr     // SNAT source (IPv4 mode)
	VPCCIDRs             []netip.Prefix // IPv4 VPC CIDRs: never SNATed, never marked
	ExcludeSNATCIDRs     []netip.Prefix // AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS
	ExternalSNAT         bool           // AWS_VPC_K8S_CNI_EXTERNALSNAT
	RandomizeSNAT        RandomizeSNAT  // AWS_VPC_K8S_CNI_RANDOMIZESNAT
	VethPrefix           string         // AWS_VPC_K8S_CNI_VETHPREFIX (e.g. "eni")
	ENIMTU               int            // AWS_VPC_ENI_MTU, applied to the primary link
	NodePortSupport      bool           // AWS_VPC_CNI_NODE_PORT_SUPPORT
	Connmark             uint32         // AWS_VPC_K8S_CNI_CONNMARK
	ExternalServiceCIDRs []netip.Prefix // AWS_EXTERNAL_SERVICE_CIDRS: rules at 1535
	PodENIStrict         bool           // ENABLE_POD_ENI with strict enforcing mode
	IPv6                 bool           // ENABLE_IPv6
	V6Egress             bool           // ENABLE_V6_EGRESS (IPv4 mode only)

	// IPTablesPath is the iptables binary ("" means "iptables" from PATH);
	// the ip6tables binary is derived from it (iptables-legacy →
	// ip6tables-legacy). Tests set it to pick a backend.
	IPTablesPath string
	// ConnmarkBackend overrides the upstream auto-detection.
	ConnmarkBackend ConnmarkBackend
}

// HostResult reports what one ReconcileHost did.
type HostResult struct {
	Backend ConnmarkBackend // the connmark backend in effect
	Changes []string        // one line per kernel change made; empty when in sync
}
