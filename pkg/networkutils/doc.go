// Package networkutils owns the node's host networking: finding ENI links by
// MAC, per-ENI route tables and rules, the host-wide SNAT/connmark/fwmark
// state, and the pod-rule maintenance ipamd does when it restores pods.
//
// Every function works on the network namespace of the calling OS thread:
// netlink sockets, nftables sockets and the iptables binaries exec'd by
// go-iptables are all created from the calling thread. Tests call it inside
// ns.Do; production calls it from the node's root namespace. The package
// never starts goroutines of its own for kernel work, because a new goroutine
// may run on a thread in another namespace.
//
// # API (stable; ipamd declares the small interface it needs)
//
//	n := networkutils.New(logger)
//
//	// Links
//	func (n *Network) LinkByMAC(ctx context.Context, mac net.HardwareAddr) (Link, error)
//
//	// Per-ENI (never the primary ENI)
//	(route-table numbers and rule priorities: pkg/hostcontract)
//	func SubnetGateway(subnet netip.Prefix) netip.Addr      // subnet+1, or fe80:ec2::1 for IPv6
//	func (e ENI) Validate() error                           // refuses only card 0 device 0 (the primary ENI)
//	func (n *Network) SetupENI(ctx context.Context, eni ENI) error
//	func (n *Network) TeardownENI(ctx context.Context, primaryIP netip.Addr, table int) error
//
//	// Host (declarative; safe to call on every reconcile tick)
//	func (c HostConfig) Validate() error
//	func (n *Network) ReconcileHost(ctx context.Context, cfg HostConfig) (HostResult, error)
//
//	// Pod rules (ipamd at restore / cleanup)
//	func (n *Network) RestorePodRules(ctx context.Context, pods []PodRule) error
//	func (n *Network) DeletePodRules(ctx context.Context, podIPs ...netip.Addr) error
//
// ReconcileHost computes the desired host state from HostConfig (a pure
// function), reads the kernel's current state, and applies only the
// difference. It owns: the primary link's MTU; ip rules `fwmark <m>/<m>
// lookup main` at priority 1024, priority 1535 rules looking up main, and (with strict
// pod-ENI mode) the relocated local rule at 20; nat chains AWS-SNAT-CHAIN-*
// and AWS-CONNMARK-CHAIN-*; rules in shared chains whose comment is exactly
// one we write ("AWS SNAT CHAIN", "AWS SNAT CHAIN EXCLUSION", "AWS, SNAT",
// "AWS, primary ENI", "AWS, outbound connections", "AWS, CONNMARK", "AWS
// CONNMARK CHAIN", "Block Node Local Pod access via IPv4/IPv6"), or that
// jump to an owned chain; and the nftables table `ip aws-cni`. Rules of
// other AWS tooling ("AWS, something else") are never touched. Anything else is left
// untouched. Owned rules and chains in the other iptables flavour (legacy
// when cfg.IPTablesPath is nf_tables, and the reverse), left by a run with
// the other binary, are removed (flavour.go). Failures are joined (errors.Join) so one broken rule does not
// stop the rest of the reconcile.
package networkutils
