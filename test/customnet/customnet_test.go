package customnet

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubefwd"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/vpctest"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// The custom-networking guide's layout end to end: each node resolves the
// ENIConfig named after its zone label, ipamd creates the node's pod ENIs in
// that ENIConfig's 100.64 subnet with its security group, pods get 100.64
// addresses from those secondary ENIs while the primary ENI holds none, pod
// traffic inside the VPC keeps the pod address and traffic to the internet
// leaves as the node (SNAT to its primary address, which the internet
// gateway maps to the node's public IP; no other address reaches the
// internet).
func TestPrivilegedCustomNetworkingPerZone(t *testing.T) {
	ctx, cancel := vpctest.StartContext(t, 90*time.Second) // clock starts after the build
	defer cancel()
	c := newCluster(t, ctx)
	nodes := c.v.Nodes()
	azOf := map[string]string{}
	for _, n := range nodes {
		az := c.register(ctx, n)
		c.createENIConfig(ctx, az)
		azOf[n.ID] = az
	}
	for _, n := range nodes {
		if err := c.v.StartAgent(ctx, n, c.agentEnv(n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := c.v.WaitReady(ctx, n, nil); err != nil {
			t.Fatalf("%v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 20))
		}
	}

	var pods []*localvpc.Pod
	for _, n := range nodes {
		for i := range 2 {
			p, err := c.v.AddPod(ctx, n, "default", fmt.Sprintf("%s-%d", n.Name, i))
			if err != nil {
				t.Fatalf("add pod on %s (%s): %v\nipamd log tail:\n%s", n.Name, azOf[n.ID], err, tail(ipamdLog(n), 20))
			}
			pods = append(pods, p)
		}
	}

	enis := map[string]vpcsim.ENIView{}
	for _, e := range c.v.Sim.NetworkInterfaces() {
		enis[e.ID] = e
	}
	for _, p := range pods {
		want := podSubnets[azOf[p.Node.ID]]
		if !want.CIDR.Contains(p.IP) {
			t.Errorf("pod %s on %s has %s, want an address of %s's ENIConfig subnet %s (%s)", p.Name, p.Node.Name, p.IP, azOf[p.Node.ID], want.ID, want.CIDR)
		}
		h, err := c.v.Locate(p.IP)
		if err != nil {
			t.Errorf("pod %s: vpcsim: %v", p.Name, err)
			continue
		}
		t.Logf("pod %s on %s (%s): %s on ENI %s (device %d, %s, %v)", p.Name, p.Node.Name, azOf[p.Node.ID], p.IP, h.ENIID, h.DeviceIndex, enis[h.ENIID].SubnetID, enis[h.ENIID].Groups)
		if h.DeviceIndex == 0 {
			t.Errorf("pod %s's address %s is on %s's primary ENI %s", p.Name, p.IP, p.Node.Name, h.ENIID)
		}
		if e := enis[h.ENIID]; e.Attachment == nil || e.Attachment.InstanceID != p.Node.ID {
			t.Errorf("pod %s's address %s is on ENI %s, not attached to %s", p.Name, p.IP, h.ENIID, p.Node.Name)
		}
	}
	for _, n := range nodes {
		want := podSubnets[azOf[n.ID]]
		for _, e := range c.v.ENIs(n) {
			if e.Attachment.DeviceIndex == 0 {
				if len(e.SecondaryIPs) > 0 || len(e.Prefixes) > 0 {
					t.Errorf("%s's primary ENI %s holds pod addresses %v %v, want none under custom networking", n.Name, e.ID, e.SecondaryIPs, e.Prefixes)
				}
				continue
			}
			if e.SubnetID != want.ID {
				t.Errorf("%s's ENI %s (device %d) is in %s, want ENIConfig %s's subnet %s", n.Name, e.ID, e.Attachment.DeviceIndex, e.SubnetID, azOf[n.ID], want.ID)
			}
			if !slices.Equal(e.Groups, []string{podSG}) {
				t.Errorf("%s's ENI %s has security groups %v, want ENIConfig %s's [%s]", n.Name, e.ID, e.Groups, azOf[n.ID], podSG)
			}
		}
	}

	for _, p := range pods {
		s, err := p.Serve()
		if err != nil {
			t.Fatalf("serve in pod %s: %v", p.Name, err)
		}
		t.Cleanup(func() { _ = s.Close() })
	}
	for _, from := range pods {
		expectSeen(t, ctx, from, internet, from.Node.PublicIP)
		if got := snatSource(t, ctx, from, internet); got != from.Node.PrimaryIP {
			t.Errorf("%s (%s) → %s left %s as %v, want its primary address %s", from.Name, from.IP, internet, from.Node.Name, got, from.Node.PrimaryIP)
		}
		expectSeen(t, ctx, from, c.v.EchoAddr, from.IP)
		for _, to := range pods {
			if to.Node != from.Node {
				expectSeen(t, ctx, from, to.IP, from.IP)
			}
		}
	}

	for _, p := range pods {
		if _, err := c.v.DelPod(ctx, p); err != nil {
			t.Errorf("delete pod %s: %v", p.Name, err)
		}
	}
	for _, n := range nodes {
		cp, err := n.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		if len(cp) != 0 {
			t.Errorf("%s's ipamd still holds %v after every pod was deleted", n.Name, cp)
		}
	}
}

// A node whose ENIConfig does not exist keeps its agent running: ipamd says
// which ENIConfig is missing in its log and in a Warning event on its
// aws-node pod, and a pod ADD fails with an error that says why. Creating
// the ENIConfig afterwards lets pods start, with no restart of the agent.
func TestPrivilegedCustomNetworkingMissingENIConfig(t *testing.T) {
	ctx, cancel := vpctest.StartContext(t, 110*time.Second) // clock starts after the build
	defer cancel()
	c := newCluster(t, ctx)
	n := c.v.Nodes()[1]
	az := c.register(ctx, n)
	if err := c.v.StartAgent(ctx, n, c.agentEnv(n)); err != nil {
		t.Fatal(err)
	}
	pid := n.AgentPID()
	exited, exitErr := n.AgentExited()

	err := kubefwd.Eventually(ctx, 30*time.Second, func() error {
		evs, err := c.cs.EventsV1().Events(awsNodeNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == "ENIConfigNotFound" && e.Regarding.Name == awsNodePod(n) && strings.Contains(e.Note, az) {
				t.Logf("event %s %s on pod %s: %s", e.Type, e.Reason, e.Regarding.Name, e.Note)
				if e.Type != "Warning" {
					return fmt.Errorf("event type %s, want Warning", e.Type)
				}
				return nil
			}
		}
		return fmt.Errorf("no ENIConfigNotFound event naming %s on pod %s/%s among %d events", az, awsNodeNamespace, awsNodePod(n), len(evs.Items))
	})
	if err != nil {
		t.Errorf("%v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 20))
	}
	err = kubefwd.Eventually(ctx, 30*time.Second, func() error {
		for _, l := range strings.Split(ipamdLog(n), "\n") {
			if strings.Contains(l, "ENIConfig") && strings.Contains(l, az) && strings.Contains(l, "does not exist") {
				t.Logf("ipamd log: %s", l)
				return nil
			}
		}
		return fmt.Errorf("no log line says ENIConfig %q does not exist", az)
	})
	if err != nil {
		t.Errorf("%v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 20))
	}

	// The node is network-ready (its agent is healthy) and fails pods with
	// an error that names the missing ENIConfig, as kubelet would report it.
	if err := c.v.WaitReady(ctx, n, nil); err != nil {
		t.Fatalf("node %s not network-ready while its ENIConfig is missing: %v", n.Name, err)
	}
	_, err = c.v.AddPod(ctx, n, "default", "early")
	switch {
	case err == nil:
		t.Errorf("a pod got an address on %s while its ENIConfig %s does not exist", n.Name, az)
	case !strings.Contains(err.Error(), "no address") || !strings.Contains(err.Error(), `ENIConfig "`+az+`"`):
		t.Errorf("ADD failed without saying that ENIConfig %q is missing: %v", az, err)
	default:
		t.Logf("ADD while the ENIConfig is missing: %v", err)
	}
	select {
	case <-exited:
		t.Fatalf("agent on %s exited while its ENIConfig was missing: %v\nagent log: %s", n.Name, exitErr(), n.LogHint())
	default:
	}

	c.createENIConfig(ctx, az)
	created := time.Now()
	var pod *localvpc.Pod
	err = kubefwd.Eventually(ctx, 60*time.Second, func() error {
		if _, err := os.Stat(n.HostPath(localvpc.NodeCNIConfDir + "/" + localvpc.ConflistName)); err != nil {
			return fmt.Errorf("no conflist yet: %w", err)
		}
		p, err := c.v.AddPod(ctx, n, "default", "late")
		if err != nil {
			return err
		}
		pod = p
		return nil
	})
	if err != nil {
		t.Fatalf("no pod started on %s within 60 s of creating ENIConfig %s: %v\nipamd log tail:\n%s", n.Name, az, err, tail(ipamdLog(n), 20))
	}
	t.Logf("pod %s got %s %s after the ENIConfig was created", pod.Name, pod.IP, time.Since(created).Round(100*time.Millisecond))
	if got := n.AgentPID(); got != pid {
		t.Errorf("agent pid changed from %d to %d: it was restarted", pid, got)
	}
	if want := podSubnets[az]; !want.CIDR.Contains(pod.IP) {
		t.Errorf("pod got %s, want an address of %s", pod.IP, want.CIDR)
	}
	if h, err := c.v.Locate(pod.IP); err != nil || h.DeviceIndex == 0 {
		t.Errorf("pod address %s: holder %+v, %v; want a secondary ENI", pod.IP, h, err)
	}
	if _, err := c.v.DelPod(ctx, pod); err != nil {
		t.Errorf("delete pod: %v", err)
	}
}

// An ENIConfig change applies to the next ENI ipamd creates; ENIs already
// attached keep their subnet and the pods on them keep their addresses.
func TestPrivilegedCustomNetworkingENIConfigChangeAppliesToNextENI(t *testing.T) {
	ctx, cancel := vpctest.StartContext(t, 90*time.Second) // clock starts after the build
	defer cancel()
	c := newCluster(t, ctx)
	n := c.v.Nodes()[0]
	az := c.register(ctx, n)
	c.createENIConfig(ctx, az)
	// A small pool, so the second ENI is created only when the first is full.
	env := c.agentEnv(n, "WARM_ENI_TARGET=0", "WARM_IP_TARGET=1", "MINIMUM_IP_TARGET=1")
	if err := c.v.StartAgent(ctx, n, env); err != nil {
		t.Fatal(err)
	}
	if err := c.v.WaitReady(ctx, n, nil); err != nil {
		t.Fatalf("%v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 20))
	}
	first, err := c.v.AddPod(ctx, n, "default", "before-change")
	if err != nil {
		t.Fatalf("add pod: %v\nipamd log tail:\n%s", err, tail(ipamdLog(n), 20))
	}
	h1, err := c.v.Locate(first.IP)
	if err != nil {
		t.Fatal(err)
	}

	const newSubnet, newCIDR, newSG = "subnet-00000000000000006", "100.64.64.0/19", "sg-00000000000000001"
	c.setENIConfig(ctx, az, newSubnet, newSG)
	// An m5.large ENI holds 9 secondary addresses: the tenth pod needs a
	// second ENI.
	var second *localvpc.Pod
	for i := range 12 {
		p, err := c.v.AddPod(ctx, n, "default", fmt.Sprintf("after-change-%d", i))
		if err != nil {
			t.Fatalf("add pod %d: %v\nipamd log tail:\n%s", i, err, tail(ipamdLog(n), 20))
		}
		if h, err := c.v.Locate(p.IP); err == nil && h.ENIID != h1.ENIID {
			second = p
			break
		}
	}
	if second == nil {
		t.Fatalf("12 more pods and no ENI but %s on %s (ENIs: %d)", h1.ENIID, n.Name, len(c.v.ENIs(n)))
	}
	t.Logf("pod %s got %s from the second ENI", second.Name, second.IP)
	if !netip.MustParsePrefix(newCIDR).Contains(second.IP) {
		t.Errorf("pod %s on the new ENI has %s, want an address of the changed ENIConfig's subnet %s (%s)", second.Name, second.IP, newSubnet, newCIDR)
	}
	for _, e := range c.v.ENIs(n) {
		switch {
		case e.Attachment.DeviceIndex == 0:
		case e.ID == h1.ENIID:
			if e.SubnetID != podSubnets[az].ID || !slices.Equal(e.Groups, []string{podSG}) {
				t.Errorf("ENI %s created before the change is now in %s with %v, want %s with [%s]", e.ID, e.SubnetID, e.Groups, podSubnets[az].ID, podSG)
			}
		default:
			if e.SubnetID != newSubnet || !slices.Equal(e.Groups, []string{newSG}) {
				t.Errorf("ENI %s created after the change is in %s with %v, want %s with [%s]", e.ID, e.SubnetID, e.Groups, newSubnet, newSG)
			}
		}
	}
	if h, err := c.v.Locate(first.IP); err != nil || h.ENIID != h1.ENIID {
		t.Errorf("pod %s's address %s moved: %+v, %v", first.Name, first.IP, h, err)
	}
}

// expectSeen asserts that a connection from p to dst arrives from want.
func expectSeen(t *testing.T, ctx context.Context, p *localvpc.Pod, dst, want netip.Addr) {
	t.Helper()
	// A path expected to work: a loaded machine gets a generous bound.
	got, err := p.WhoamiWithin(ctx, dst, 30*time.Second)
	if err != nil {
		t.Errorf("%s (%s) → %s: %v", p.Name, p.IP, dst, err)
		return
	}
	if got != want {
		t.Errorf("%s (%s) → %s: far end saw %s, want %s", p.Name, p.IP, dst, got, want)
	}
}

// snatSource reads the node's conntrack table for p's connection to dst
// and returns the address the node translated p's source to (the reply's
// destination), or the zero address when there is no such connection.
func snatSource(t *testing.T, ctx context.Context, p *localvpc.Pod, dst netip.Addr) netip.Addr {
	t.Helper()
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, stderr, err := p.Node.Exec(ctx, env, nil, "conntrack", "-L", "-p", "tcp", "-s", p.IP.String(), "-d", dst.String())
	if err != nil {
		t.Errorf("conntrack in %s: %v (%s)", p.Node.Name, err, stderr)
		return netip.Addr{}
	}
	for _, l := range strings.Split(string(out), "\n") {
		var dsts []string
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "dst="); ok {
				dsts = append(dsts, v)
			}
		}
		if len(dsts) == 2 { // original direction, then reply direction
			a, err := netip.ParseAddr(dsts[1])
			if err == nil {
				return a
			}
		}
	}
	return netip.Addr{}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
