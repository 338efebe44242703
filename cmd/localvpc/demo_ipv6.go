package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// The IPv6 tour (docs/compatibility.md, "IPv6 and egress-cni"): an IPv6
// cluster on the same two nodes. Pods get IPv6 addresses from /80 prefixes
// EC2 delegates to the primary ENI, talk over IPv6 across the VPC and to
// the internet with their own addresses (the internet gateway does no NAT
// for IPv6), and reach an IPv4-only internet host through egress-cni,
// which SNATs their node-local 169.254.172.x address to the node's IPv4.
const totalStepsIPv6 = 6

func (d *demo) stepf6(format string, a ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n[IPv6 %d/%d] %s\n", d.step, totalStepsIPv6, fmt.Sprintf(format, a...))
}

func (d *demo) runIPv6(ctx context.Context) (err error) {
	d.stepf6("Preparing an IPv6 cluster")
	log, closeLog, err := d.prepare()
	if err != nil {
		return err
	}
	defer closeLog()
	sc, err := localvpc.IPv6Scenario(d.f.sc)
	if err != nil {
		return err
	}
	d.linef("scenario %s with IPv6: VPC %s, a /64 per subnet, an IPv6 address per node", d.f.scenario, sc.VPCs[0].IPv6CIDR)

	d.stepf6("Starting the VPC with IPv6 routed: /128s and /80s to their ENI, source check, IPv6 internet gateway")
	d.v, err = localvpc.Start(ctx, localvpc.Config{Scenario: sc, BinDir: d.f.binDir, Logger: log, SimLogger: log.With("component", "vpcsim"), IPv6: true})
	if err != nil {
		return err
	}
	defer d.cleanup(&err)
	d.nodeTable()

	d.stepf6("Starting aws-node in IPv6 mode (%s)", strings.Join(localvpc.IPv6AgentEnv, " "))
	t0 := time.Now()
	if err := d.v.StartAgents(ctx, localvpc.IPv6AgentEnv, nil); err != nil {
		return err
	}
	nodes := d.v.Nodes()
	n1, n2 := nodes[0], nodes[1]
	d.linef("every node is network-ready after %.1fs", time.Since(t0).Seconds())
	if l, err := n1.Conflist(); err == nil {
		var chain []string
		for _, p := range l.Plugins {
			chain = append(chain, p.Network.Type+egressState(p))
		}
		d.check(strings.HasPrefix(strings.Join(chain, " → "), "aws-cni → egress-cni (enabled"), "the installer's chain: %s", strings.Join(chain, " → "))
	}

	d.stepf6("Creating IPv6 pods through libcni")
	var pods []*localvpc.Pod
	for _, x := range []struct {
		n      *localvpc.Node
		prefix string
	}{{n1, "web6"}, {n1, "web6"}, {n2, "api6"}} {
		p, err := d.v.AddPod(ctx, x.n, "default", fmt.Sprintf("%s-%d", x.prefix, len(pods)))
		if err != nil {
			return err
		}
		pods = append(pods, p)
	}
	d.podTableIPv6(pods)

	d.stepf6("Traffic")
	for _, p := range pods {
		s, err := p.Serve()
		if err != nil {
			return err
		}
		d.servers = append(d.servers, s)
	}
	a, b, c := pods[0], pods[1], pods[2]
	d.expect(ctx, a, b.IP, a.IP, fmt.Sprintf("pod→pod over IPv6 on one node: %s → %s", a.Name, b.Name))
	d.expect(ctx, b, c.IP, b.IP, fmt.Sprintf("pod→pod over IPv6 across nodes: %s (%s) → %s (%s)", b.Name, n1.Name, c.Name, n2.Name))
	d.expect(ctx, c, a.IP, c.IP, fmt.Sprintf("pod→pod over IPv6 across nodes: %s (%s) → %s (%s)", c.Name, n2.Name, a.Name, n1.Name))
	d.expect(ctx, a, d.v.EchoAddrV6, a.IP, fmt.Sprintf("pod→VPC address %s keeps the pod's own address", d.v.EchoAddrV6))
	inet6 := dataplane.DefaultInternetV6Addrs[0]
	for _, p := range []*localvpc.Pod{a, c} {
		d.expect(ctx, p, inet6, p.IP, fmt.Sprintf("%s → IPv6 internet %s with its own address (no NAT for IPv6)", p.Name, inet6))
	}
	inet4 := dataplane.DefaultInternetAddrs[0]
	for _, p := range []*localvpc.Pod{a, c} {
		if p.Node.PublicIP.IsValid() {
			d.expect(ctx, p, inet4, p.Node.PublicIP, fmt.Sprintf("%s → IPv4-only internet %s through egress-cni: SNAT to %s's %s, then the gateway's NAT to %s", p.Name, inet4, p.Node.Name, p.Node.PrimaryIP, p.Node.PublicIP))
		}
	}

	d.stepf6("Removing every pod")
	if err := d.removePods(ctx); err != nil {
		return err
	}
	for _, n := range nodes {
		held := 0
		es, _ := os.ReadDir(n.HostPath("/run/cni/v6pd/egress-v4-ipam/aws-cni"))
		for _, e := range es {
			if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
				held++
			}
		}
		d.check(held == 0, "%s: egress-cni holds no 169.254.172.x address (%d)", n.Name, held)
	}
	d.summary()
	if len(d.failed) > 0 {
		return fmt.Errorf("%d of %d checks failed: %s", len(d.failed), d.checks, strings.Join(d.failed, "; "))
	}
	return nil
}

// egressState is " (enabled …)" for the egress-cni entry of a conflist.
func egressState(p *libcni.NetworkConfig) string {
	if p.Network.Type != "egress-cni" {
		return ""
	}
	var e struct {
		Enabled string `json:"enabled"`
		NodeIP  string `json:"nodeIP"`
	}
	_ = json.Unmarshal(p.Bytes, &e) // a broken entry shows as disabled
	if e.Enabled != "true" {
		return " (disabled)"
	}
	return fmt.Sprintf(" (enabled, SNAT to %s)", e.NodeIP)
}

func (d *demo) podTableIPv6(pods []*localvpc.Pod) {
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "      POD\tNODE\tIPv6 ADDRESS\tDELEGATED /80\tENI")
	for _, p := range pods {
		pre, eni := "?", "?"
		for _, e := range d.v.ENIs(p.Node) {
			for _, x := range e.IPv6Prefixes {
				if x.Contains(p.IP) {
					pre, eni = x.String(), e.ID
				}
			}
		}
		fmt.Fprintf(tw, "      %s\t%s\t%s\t%s\t%s\n", p.Name, p.Node.Name, p.IP, pre, eni)
	}
	_ = tw.Flush()
}
