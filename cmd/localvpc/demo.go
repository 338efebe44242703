package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// demoEnv is the agents' pool setting: a small warm pool so the first ENI
// fills up while we watch and the second one is attached live.
var demoEnv = []string{"WARM_IP_TARGET=3", "MINIMUM_IP_TARGET=3", "WARM_ENI_TARGET=0"}

const totalSteps = 8

// demo is one run of the guided tour.
type demo struct {
	out     io.Writer
	f       demoFlags
	v       *localvpc.VPC
	start   time.Time
	step    int
	checks  int
	failed  []string
	servers []io.Closer
	tty     bool // progress lines are rewritten in place
	// stopped is closed by Ctrl-C or SIGTERM: the user ended the tour, so
	// there is no failure to keep node logs for.
	stopped <-chan struct{}
}

func runDemo(ctx context.Context, args []string, stderr io.Writer) int {
	f, err := parseDemoFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if !errors.Is(err, errUsageShown) {
			fmt.Fprintf(stderr, "localvpc demo: %v\n", err)
		}
		return 2
	}
	d := &demo{out: os.Stdout, f: f, start: time.Now(), stopped: ctx.Done()}
	if st, err := os.Stdout.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		d.tty = true
	}
	if f.ipv6 {
		err = d.runIPv6(ctx) // demo_ipv6.go
	} else if f.sgp {
		err = d.runSGP(ctx) // demo_sgp.go
	} else {
		err = d.run(ctx)
	}
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(d.out, "\n✘ interrupted")
		return 130
	}
	if err != nil {
		fmt.Fprintf(d.out, "\n✘ demo failed: %v\n", err)
		return 1
	}
	return 0
}

func (d *demo) stepf(format string, a ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n[%d/%d] %s\n", d.step, totalSteps, fmt.Sprintf(format, a...))
}

func (d *demo) linef(format string, a ...any) { fmt.Fprintf(d.out, "      "+format+"\n", a...) }

// check records one observed outcome.
func (d *demo) check(ok bool, format string, a ...any) {
	d.checks++
	mark := "✔"
	if !ok {
		mark = "✘"
		d.failed = append(d.failed, fmt.Sprintf(format, a...))
	}
	fmt.Fprintf(d.out, "      %s %s\n", mark, fmt.Sprintf(format, a...))
}

// begin checks that the tour can run and opens its detailed log.
func (d *demo) begin() (*slog.Logger, func(), error) {
	if os.Geteuid() != 0 {
		return nil, nil, errors.New("the demo needs root: it creates network and mount namespaces (nothing changes in the machine's own network namespace)")
	}
	return newLogger(d.f.logFile)
}

// removeStale removes what crashed earlier runs left behind.
func (d *demo) removeStale() {
	if removed, err := localvpc.CleanupStale(""); err != nil {
		d.linef("note: leftovers of earlier runs could not all be removed: %v", err)
	} else if len(removed) > 0 {
		d.linef("removed leftovers of %d crashed earlier run(s)", len(removed))
	}
}

// removePods deletes every pod and checks that each node's ipamd holds
// no pod address afterwards.
func (d *demo) removePods(ctx context.Context) error {
	for _, p := range d.v.Pods() {
		if _, err := d.v.DelPod(ctx, p); err != nil {
			return err
		}
	}
	for _, n := range d.v.Nodes() {
		cp, err := n.Checkpoint()
		d.check(err == nil && len(cp) == 0, "%s: ipamd holds no pod addresses (%d)", n.Name, len(cp))
	}
	return nil
}

// prepare begins a tour on the demo's two-node scenario (d.f.sc, read
// with the flags): its log, no leftovers of crashed runs.
func (d *demo) prepare() (*slog.Logger, func(), error) {
	log, closeLog, err := d.begin()
	if err != nil {
		return nil, nil, err
	}
	d.removeStale()
	return log, closeLog, nil
}

func (d *demo) run(ctx context.Context) (err error) {
	d.stepf("Preparing")
	log, closeLog, err := d.prepare()
	if err != nil {
		return err
	}
	defer closeLog()
	sc := d.f.sc
	d.linef("scenario %s, binaries from %s, detailed log in %s", d.f.scenario, d.f.binDir, d.f.logFile)

	d.stepf("Starting the VPC: vpcsim, its data plane and the nodes")
	d.v, err = localvpc.Start(ctx, localvpc.Config{Scenario: sc, BinDir: d.f.binDir, Logger: log, SimLogger: log.With("component", "vpcsim")})
	if err != nil {
		return err
	}
	defer d.cleanup(&err)
	mode, err := d.v.AgentMode()
	if err != nil {
		return err
	}
	d.nodeTable()

	d.stepf("Starting aws-node on every node (%s; %s)", modeText(mode), strings.Join(demoEnv, " "))
	t0 := time.Now()
	if err := d.v.StartAgents(ctx, demoEnv, func(n *localvpc.Node, waited time.Duration) {
		if d.tty {
			fmt.Fprintf(d.out, "\r      waiting for %s to be network-ready … %ds", n.Name, int(waited.Seconds()))
		} else {
			d.linef("waiting for %s to be network-ready … %ds", n.Name, int(waited.Seconds()))
		}
	}); err != nil {
		fmt.Fprintln(d.out)
		return err
	}
	if d.tty {
		fmt.Fprint(d.out, "\r")
	}
	fmt.Fprintf(d.out, "      every node is network-ready (10-aws.conflist installed) after %.1fs          \n", time.Since(t0).Seconds())
	d.eniSummary()

	nodes := d.v.Nodes()
	n1, n2 := nodes[0], nodes[1]
	d.stepf("Creating pods through libcni, as a container runtime does")
	pods1, err := d.createPods(ctx, n1, "web", d.f.pods)
	if err != nil {
		return err
	}
	pods2, err := d.createPods(ctx, n2, "api", 3)
	if err != nil {
		return err
	}
	d.podTable()
	devs := map[int]bool{}
	for _, p := range pods1 {
		if h, err := d.v.Locate(p.IP); err == nil {
			devs[h.DeviceIndex] = true
		}
	}
	d.check(len(devs) > 1, "%s's pods span %d ENIs: a second ENI was attached while pods were being created", n1.Name, len(devs))

	d.stepf("Traffic")
	for _, p := range append(append([]*localvpc.Pod(nil), pods1...), pods2...) {
		s, err := p.Serve()
		if err != nil {
			return err
		}
		d.servers = append(d.servers, s)
	}
	a, b := pods1[0], pods1[len(pods1)-1]
	d.expect(ctx, a, b.IP, a.IP, fmt.Sprintf("pod→pod on one node: %s → %s", a.Name, b.Name))
	c := pods2[0]
	d.expect(ctx, b, c.IP, b.IP, fmt.Sprintf("pod→pod across nodes: %s (%s) → %s (%s)", b.Name, n1.Name, c.Name, n2.Name))
	d.expect(ctx, c, a.IP, c.IP, fmt.Sprintf("pod→pod across nodes: %s (%s) → %s (%s)", c.Name, n2.Name, a.Name, n1.Name))
	echo, _ := localvpc.VPCEchoAddr(sc)
	d.expect(ctx, b, echo, b.IP, fmt.Sprintf("pod→VPC address %s keeps the pod's own address", echo))
	inet := dataplane.DefaultInternetAddrs[0]
	for _, x := range []struct {
		p *localvpc.Pod
		n *localvpc.Node
	}{{b, n1}, {c, n2}} {
		if x.n.PublicIP.IsValid() {
			d.expect(ctx, x.p, inet, x.n.PublicIP, fmt.Sprintf("pod→internet %s leaves as %s (SNAT to %s's %s, then the internet gateway's 1:1 NAT)", inet, x.n.PublicIP, x.n.Name, x.n.PrimaryIP))
		} else {
			d.linef("%s has no public IP: its pods cannot reach the internet", x.n.Name)
		}
	}

	d.stepf("Deleting pods")
	del := pods1[len(pods1)/2:]
	keep := pods1[:len(pods1)/2]
	for _, p := range del {
		if _, err := d.v.DelPod(ctx, p); err != nil {
			return err
		}
	}
	d.linef("deleted %d pods on %s (CNI DEL); their addresses go back to the warm pool", len(del), n1.Name)
	d.check(d.checkpointHas(n1, keep, del), "%s's ipamd checkpoint holds exactly the %d remaining pods", n1.Name, len(keep))

	d.stepf("Killing ipamd on %s (SIGKILL) and starting it again", n1.Name)
	t0 = time.Now()
	if err := d.v.RestartAgent(ctx, n1, syscall.SIGKILL, demoEnv); err != nil {
		return err
	}
	d.linef("%s ready again after %.1fs", n1.Name, time.Since(t0).Seconds())
	d.check(d.checkpointHas(n1, keep, nil), "after the restart every remaining pod keeps its address in ipamd")
	talking := 0
	for _, p := range keep {
		got, err := p.Whoami(ctx, echo)
		if err != nil || got != p.IP {
			d.linef("%s (%s): saw %v, err %v", p.Name, p.IP, got, err)
			continue
		}
		talking++
	}
	d.check(talking == len(keep), "%d of %d pods on %s still talk with their own addresses", talking, len(keep), n1.Name)
	fresh, err := d.v.AddPod(ctx, n1, "default", "after-restart")
	if err != nil {
		return err
	}
	clash := false
	for _, p := range keep {
		clash = clash || p.IP == fresh.IP
	}
	d.check(!clash, "a new pod gets a free address (%s), no running pod's", fresh.IP)

	d.stepf("Removing every pod")
	if err := d.removePods(ctx); err != nil {
		return err
	}
	d.eniSummary()
	d.summary()
	if len(d.failed) > 0 {
		return fmt.Errorf("%d of %d checks failed: %s", len(d.failed), d.checks, strings.Join(d.failed, "; "))
	}
	return nil
}

func modeText(m localvpc.AgentMode) string {
	if m == localvpc.ModeInstaller {
		return "aws-vpc-cni installer → ipamd"
	}
	return "ipamd; the conflist is rendered by localvpc as no installer binary is built"
}

// expect connects from p to a whoami service at dst and checks the source
// address it saw.
func (d *demo) expect(ctx context.Context, p *localvpc.Pod, dst, want netip.Addr, what string) {
	got, err := p.Whoami(ctx, dst)
	if err != nil {
		d.check(false, "%s: %v", what, err)
		return
	}
	d.check(got == want, "%s — far end saw %s", what, got)
}

func (d *demo) createPods(ctx context.Context, n *localvpc.Node, prefix string, count int) ([]*localvpc.Pod, error) {
	var out []*localvpc.Pod
	attached := len(d.v.ENIs(n))
	for i := 0; i < count; i++ {
		t0 := time.Now()
		p, err := d.v.AddPod(ctx, n, "default", fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			return out, err
		}
		out = append(out, p)
		dev := "?"
		if h, err := d.v.Locate(p.IP); err == nil {
			dev = fmt.Sprintf("eth%d", h.DeviceIndex)
		}
		line := fmt.Sprintf("%s: %d/%d pods (%s → %s on %s, ADD took %dms)", n.Name, i+1, count, p.Name, p.IP, dev, time.Since(t0).Milliseconds())
		if d.tty {
			fmt.Fprintf(d.out, "\r      %-70s", line)
		} else {
			d.linef("%s", line)
		}
		if now := len(d.v.ENIs(n)); now > attached {
			if d.tty {
				fmt.Fprintln(d.out)
			}
			for _, e := range d.v.ENIs(n)[attached:] {
				d.linef("★ ENI %s attached live to %s as eth%d (the ADD of %s waited %.1fs for it)", e.ID, n.Name, e.Attachment.DeviceIndex, p.Name, time.Since(t0).Seconds())
			}
			attached = now
		}
	}
	if d.tty {
		fmt.Fprintln(d.out)
	}
	return out, nil
}

func (d *demo) nodeTable() {
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "      NODE\tINSTANCE\tTYPE\tPRIMARY IP\tPUBLIC IP\teth0 MAC\tNETNS")
	for _, n := range d.v.Nodes() {
		inst, err := d.v.Sim.Instance(n.ID)
		if err != nil {
			continue
		}
		pub := "-"
		if inst.PublicIP.IsValid() {
			pub = inst.PublicIP.String()
		}
		fmt.Fprintf(tw, "      %s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.ID, inst.Type, n.PrimaryIP, pub, inst.MAC, n.NetNS)
	}
	_ = tw.Flush()
}

func (d *demo) eniSummary() {
	for _, n := range d.v.Nodes() {
		var parts []string
		for _, e := range d.v.ENIs(n) {
			parts = append(parts, fmt.Sprintf("eth%d %s (%d secondary IPs, %d prefixes)", e.Attachment.DeviceIndex, e.ID, len(e.SecondaryIPs), len(e.Prefixes)))
		}
		d.linef("%s: %s", n.Name, strings.Join(parts, "; "))
	}
}

func (d *demo) podTable() {
	tw := tabwriter.NewWriter(d.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "      POD\tNODE\tADDRESS\tENI\tDEVICE")
	for _, p := range d.v.Pods() {
		eni, dev := "?", "?"
		if h, err := d.v.Locate(p.IP); err == nil {
			eni, dev = h.ENIID, fmt.Sprintf("eth%d", h.DeviceIndex)
		}
		fmt.Fprintf(tw, "      %s\t%s\t%s\t%s\t%s\n", p.Name, p.Node.Name, p.IP, eni, dev)
	}
	_ = tw.Flush()
}

// checkpointHas says whether the node's checkpoint holds every pod in keep
// with its address and none in gone.
func (d *demo) checkpointHas(n *localvpc.Node, keep, gone []*localvpc.Pod) bool {
	cp, err := n.Checkpoint()
	if err != nil {
		d.linef("%v", err)
		return false
	}
	ok := true
	for _, p := range keep {
		if cp[p.ContainerID] != p.IP {
			d.linef("%s: checkpoint has %v, pod has %s", p.Name, cp[p.ContainerID], p.IP)
			ok = false
		}
	}
	for _, p := range gone {
		if _, still := cp[p.ContainerID]; still {
			d.linef("%s: deleted but still in the checkpoint", p.Name)
			ok = false
		}
	}
	return ok
}

func (d *demo) summary() {
	st := d.v.Sim.Stats()
	var total int64
	keys := make([]string, 0, len(st.Calls))
	for k, c := range st.Calls {
		total += c
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var calls []string
	for _, k := range keys {
		calls = append(calls, fmt.Sprintf("%s %d", k, st.Calls[k]))
	}
	fmt.Fprintf(d.out, "\nSummary: %d of %d checks passed in %.0fs\n", d.checks-len(d.failed), d.checks, time.Since(d.start).Seconds())
	fmt.Fprintf(d.out, "      EC2 calls: %d (%s)\n", total, strings.Join(calls, ", "))
}

// cleanup removes the run (saving logs on failure, not on Ctrl-C) and
// reports it.
func (d *demo) cleanup(errp *error) {
	interrupted := false
	select {
	case <-d.stopped:
		interrupted = true
	default:
	}
	if (*errp != nil && !interrupted) || d.f.keepLogs != "" {
		dst := d.f.keepLogs
		if dst == "" {
			dst = filepath.Join(os.TempDir(), "localvpc-logs-"+d.v.RunID)
		}
		if serr := d.v.SaveLogs(dst); serr == nil {
			fmt.Fprintf(d.out, "      node logs saved in %s\n", dst)
		}
	}
	for _, s := range d.servers {
		_ = s.Close()
	}
	cerr := d.v.Close()
	left, _ := dataplane.ListNamespaces(dataplane.RunPrefix(d.v.RunID))
	if cerr != nil || len(left) > 0 {
		fmt.Fprintf(d.out, "✘ cleanup incomplete: %v (namespaces left: %v); run `bin/localvpc cleanup`\n", cerr, left)
		if *errp == nil {
			*errp = errors.New("cleanup incomplete")
		}
		return
	}
	fmt.Fprintf(d.out, "      cleaned up: every namespace, process and directory of run %s is gone\n", d.v.RunID)
}
