// Package cnitool drives a node of the local VPC with cnitool, the
// command-line front end of libcni (the library container runtimes use):
// ADD, CHECK and DEL with the conflist the installer wrote, chained with
// the reference portmap plugin, against an ipamd backed by vpcsim. Gated on
// VPC_CNI_PRIVILEGED=1 (root, namespaces).
package cnitool

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/vpctest"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// cnitoolVersion matches the containernetworking/cni module we build against.
const cnitoolVersion = "v1.3.1"

const (
	netName  = "aws-cni" // the "name" of 10-aws.conflist
	hostPort = 18080
)

var (
	toolOnce sync.Once
	toolPath string
	toolErr  error
)

// cnitool finds cnitool in $GOPATH/bin or $PATH (scripts/install-deps.sh
// puts it there), or installs it into a temporary GOBIN.
func cnitool(t *testing.T) string {
	t.Helper()
	toolOnce.Do(func() {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			p := filepath.Join(strings.TrimSpace(string(out)), "bin", "cnitool")
			if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o111 != 0 {
				toolPath = p
				return
			}
		}
		if p, err := exec.LookPath("cnitool"); err == nil {
			toolPath = p
			return
		}
		gobin, err := os.MkdirTemp("", "vpccni-cnitool-gobin-")
		if err != nil {
			toolErr = err
			return
		}
		cmd := exec.Command("go", "install", "github.com/containernetworking/cni/cnitool@"+cnitoolVersion)
		cmd.Dir = gobin // outside our module: go install pkg@version resolves on its own
		cmd.Env = append(os.Environ(), "GOBIN="+gobin)
		if out, err := cmd.CombinedOutput(); err != nil {
			toolErr = fmt.Errorf("go install cnitool@%s: %w\n%s", cnitoolVersion, err, out)
			return
		}
		toolPath = filepath.Join(gobin, "cnitool")
	})
	if toolErr != nil {
		t.Fatalf("cnitool: %v", toolErr)
	}
	return toolPath
}

// startVPC starts the two-node scenario with agents ready; everything is
// removed when the test ends, and leftovers fail the test.
func startVPC(t *testing.T, ctx context.Context) *localvpc.VPC {
	t.Helper()
	sc, err := vpcsim.LoadScenario(filepath.Join("testdata", "two-node.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	v := vpctest.Start(t, ctx, sc, "vpccni-cnitool-logs")
	if err := v.StartAgents(ctx, nil, nil); err != nil {
		t.Fatalf("start agents: %v", err)
	}
	return v
}

// runner runs cnitool inside a node, as a runtime on that node would.
type runner struct {
	tool string
	node *localvpc.Node
	env  []string
}

func (r *runner) run(ctx context.Context, confDir, verb, nsPath string) ([]byte, error) {
	env := append([]string{"NETCONFPATH=" + confDir}, r.env...)
	stdout, stderr, err := r.node.Exec(ctx, env, nil, r.tool, verb, netName, nsPath)
	if err != nil {
		return stdout, fmt.Errorf("cnitool %s %s %s: %w\nstdout: %s\nstderr: %s", verb, netName, nsPath, err, stdout, stderr)
	}
	return stdout, nil
}

// containerID is the id cnitool derives from the namespace path.
func containerID(nsPath string) string {
	s := sha512.Sum512([]byte(nsPath))
	return fmt.Sprintf("cnitool-%x", s[:10])
}

// checkableCopy writes the node's conflist without "disableCheck" (which
// our installer sets for runtimes) into a new directory and returns it.
func checkableCopy(t *testing.T, n *localvpc.Node) string {
	t.Helper()
	data, err := os.ReadFile(n.HostPath(filepath.Join(localvpc.NodeCNIConfDir, localvpc.ConflistName)))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("node %s conflist: %v", n.Name, err)
	}
	if m["name"] != netName {
		t.Fatalf("node %s conflist is named %v, want %s", n.Name, m["name"], netName)
	}
	delete(m, "disableCheck")
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() // the node's mount namespace sees the machine's /tmp
	if err := os.WriteFile(filepath.Join(dir, localvpc.ConflistName), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// natRules is the node's nat table as iptables-save prints it.
func natRules(t *testing.T, ctx context.Context, n *localvpc.Node) string {
	t.Helper()
	out, stderr, err := n.Exec(ctx, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, nil, "iptables-save", "-t", "nat")
	if err != nil {
		t.Fatalf("iptables-save in %s: %v (%s)", n.Name, err, stderr)
	}
	return string(out)
}

// dnatRule finds portmap's DNAT of hostPort to the pod in the nat table.
func dnatRule(rules string, pod netip.Addr, containerPort int) string {
	to := fmt.Sprintf("--to-destination %s:%d", pod, containerPort)
	for _, l := range strings.Split(rules, "\n") {
		if strings.Contains(l, fmt.Sprintf("--dport %d", hostPort)) && strings.Contains(l, to) {
			return l
		}
	}
	return ""
}

// delPodRoute deletes the node's /32 route to pod (to break the wiring).
func delPodRoute(t *testing.T, n *localvpc.Node, pod netip.Addr) {
	t.Helper()
	nsh, err := netns.GetFromPath(n.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dst := &net.IPNet{IP: pod.AsSlice(), Mask: net.CIDRMask(32, 32)}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: dst, Table: 254}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil || len(routes) == 0 {
		t.Fatalf("node %s has no route to pod %s (err %v)", n.Name, pod, err)
	}
	for _, r := range routes {
		if err := h.RouteDel(&r); err != nil {
			t.Fatalf("delete route to %s in %s: %v", pod, n.Name, err)
		}
	}
}

// portmapVersion is the reference portmap built from source; Debian's
// (v1.1.1) has a CHECK bug for IPv4-only pods (it also checks the ip6tables
// chain it never created: "could not check ipv6 dnat").
const portmapVersion = "v1.9.1"

var (
	portmapOnce sync.Once
	portmapDir  string
	portmapErr  error
)

// builtPortmap returns a directory holding portmap built from
// containernetworking/plugins@portmapVersion, cached per machine in
// ~/.cache/vpc-cni (like kube-apiserver).
func builtPortmap(t *testing.T) string {
	t.Helper()
	portmapOnce.Do(func() {
		cache, err := os.UserCacheDir()
		if err != nil {
			portmapErr = err
			return
		}
		portmapDir = filepath.Join(cache, "vpc-cni", "cni-plugins-"+portmapVersion)
		if st, err := os.Stat(filepath.Join(portmapDir, "portmap")); err == nil && st.Mode().IsRegular() {
			return
		}
		if err := os.MkdirAll(portmapDir, 0o755); err != nil {
			portmapErr = err
			return
		}
		cmd := exec.Command("go", "install", "github.com/containernetworking/plugins/plugins/meta/portmap@"+portmapVersion)
		cmd.Dir = portmapDir // outside our module: the plugins' own go.mod applies
		cmd.Env = append(os.Environ(), "GOBIN="+portmapDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			portmapErr = fmt.Errorf("go install portmap@%s: %w\n%s", portmapVersion, err, out)
		}
	})
	if portmapErr != nil {
		t.Fatalf("portmap: %v", portmapErr)
	}
	return portmapDir
}

// ADD through cnitool gives the pod a VPC address held by one of its node's
// ENIs in vpcsim, and portmap publishes containerPort on the node's primary
// address: another node connects to <node IP>:<hostPort> and reaches the
// pod. CHECK passes on the intact pod and fails once the node's route to the
// pod is gone. DEL removes portmap's rules and ipamd's allocation, and a
// second DEL succeeds. Run with Debian's portmap (what localvpc installs in
// every node, as upstream's init container does) and with portmap built
// from source, whose CHECK works for IPv4-only pods.
func TestPrivilegedCNIToolAddCheckDelWithPortmap(t *testing.T) {
	testutil.Privileged(t)
	if _, err := os.Stat(filepath.Join(localvpc.DefaultRefPluginDir, "portmap")); err != nil {
		t.Skipf("reference portmap plugin missing (%v): install containernetworking-plugins (scripts/install-deps.sh)", err)
	}
	tool := cnitool(t)
	built := builtPortmap(t)
	ctx, cancel := vpctest.StartContext(t, 90*time.Second) // clock starts after the build
	defer cancel()
	v := startVPC(t, ctx)
	for _, tc := range []struct {
		name    string
		cniPath string
		// debianCheckBug: CHECK may fail with Debian portmap's IPv6 bug.
		debianCheckBug bool
	}{
		{"debian-portmap", localvpc.NodeCNIBinDir, true},
		{"portmap-" + portmapVersion, built + ":" + localvpc.NodeCNIBinDir, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addCheckDel(t, ctx, v, tool, tc.name, tc.cniPath, tc.debianCheckBug)
		})
	}
}

func addCheckDel(t *testing.T, ctx context.Context, v *localvpc.VPC, tool, name, cniPath string, debianCheckBug bool) {
	nodes := v.Nodes()
	n1, n2 := nodes[0], nodes[1]

	podNS, err := dataplane.NewNamedNS(dataplane.RunPrefix(v.RunID) + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dataplane.DeleteNamedNS(podNS) })
	cid := containerID(podNS)

	const containerPort = dataplane.WhoamiPort
	r := &runner{tool: tool, node: n1, env: []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"CNI_PATH=" + cniPath,
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=" + name + ";K8S_POD_INFRA_CONTAINER_ID=" + cid,
		fmt.Sprintf(`CAP_ARGS={"portMappings":[{"hostPort":%d,"containerPort":%d,"protocol":"tcp"}]}`, hostPort, containerPort),
	}}
	// ADD
	out, err := r.run(ctx, localvpc.NodeCNIConfDir, "add", podNS)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("cnitool add printed %q: %v", out, err)
	}
	var pod netip.Addr
	for _, ip := range res.IPs {
		if p, err := netip.ParsePrefix(ip.Address); err == nil && p.Addr().Is4() {
			pod = p.Addr()
		}
	}
	if !pod.IsValid() {
		t.Fatalf("cnitool add result has no IPv4 address: %s", out)
	}
	t.Logf("pod address %s (container id %s)", pod, cid)
	h, err := v.Locate(pod)
	if err != nil {
		t.Fatalf("vpcsim: %v", err)
	}
	onNode := false
	for _, e := range v.ENIs(n1) {
		onNode = onNode || e.ID == h.ENIID
	}
	if !onNode {
		t.Errorf("pod address %s is held by ENI %s, which is not attached to %s", pod, h.ENIID, n1.Name)
	}
	cp, err := n1.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if cp[cid] != pod {
		t.Errorf("ipamd checkpoint on %s has %v for %s, want %s", n1.Name, cp[cid], cid, pod)
	}

	// portmap's rules, and traffic through them from another node.
	nat := natRules(t, ctx, n1)
	if !strings.Contains(nat, ":CNI-HOSTPORT-DNAT") {
		t.Errorf("no CNI-HOSTPORT-DNAT chain in %s's nat table:\n%s", n1.Name, nat)
	}
	if dnatRule(nat, pod, containerPort) == "" {
		t.Errorf("no DNAT of port %d to %s:%d in %s's nat table:\n%s", hostPort, pod, containerPort, n1.Name, nat)
	}
	srv, err := dataplane.ServeWhoami(podNS, netip.AddrPortFrom(pod, containerPort))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	// The published port works: a loaded CI machine gets 30 s to connect.
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	seen, err := dataplane.Whoami(dctx, n2.NetNS, netip.Addr{}, netip.AddrPortFrom(n1.PrimaryIP, hostPort))
	dcancel()
	if err != nil {
		t.Errorf("%s → %s:%d (published port of pod %s): %v", n2.Name, n1.PrimaryIP, hostPort, pod, err)
	} else if seen != n2.PrimaryIP {
		t.Errorf("%s → %s:%d: the pod saw %s, want %s", n2.Name, n1.PrimaryIP, hostPort, seen, n2.PrimaryIP)
	}

	// CHECK: passes on the intact pod, fails once the wiring is broken.
	checkDir := checkableCopy(t, n1)
	_, err = r.run(ctx, checkDir, "check", podNS)
	switch {
	case err == nil:
	case debianCheckBug && strings.Contains(err.Error(), "could not check ipv6 dnat"):
		t.Logf("CHECK hit Debian portmap's IPv6 bug (checked with portmap %s instead): %s", portmapVersion, firstLine(err))
	default:
		t.Errorf("CHECK of an intact pod: %v", err)
	}
	delPodRoute(t, n1, pod)
	if debianCheckBug {
		// CHECK cannot tell a broken pod from Debian's bug; skip to DEL.
	} else if _, err := r.run(ctx, checkDir, "check", podNS); err == nil {
		t.Errorf("CHECK passed after the node's route to %s was deleted", pod)
	} else if !strings.Contains(err.Error(), pod.String()) {
		t.Errorf("CHECK failed without naming the pod address %s: %v", pod, err)
	} else {
		t.Logf("CHECK with the route deleted: %v", firstLine(err))
	}

	// DEL, twice.
	for i := 1; i <= 2; i++ {
		if _, err := r.run(ctx, localvpc.NodeCNIConfDir, "del", podNS); err != nil {
			t.Fatalf("DEL #%d: %v", i, err)
		}
	}
	nat = natRules(t, ctx, n1)
	if l := dnatRule(nat, pod, containerPort); l != "" {
		t.Errorf("portmap's DNAT survived DEL: %s", l)
	}
	if strings.Contains(nat, fmt.Sprintf("--dport %d", hostPort)) {
		t.Errorf("a rule for port %d survived DEL:\n%s", hostPort, nat)
	}
	cp, err = n1.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	if ip, ok := cp[cid]; ok {
		t.Errorf("ipamd still holds %s for %s after DEL", ip, cid)
	}
	for id, ip := range cp {
		if ip == pod {
			t.Errorf("ipamd checkpoint gives %s to %s after DEL", pod, id)
		}
	}
	// The address stays in the node's warm pool or goes back to EC2; either
	// way no other node got it.
	if h, err := v.Locate(pod); err == nil {
		for _, e := range v.ENIs(n2) {
			if e.ID == h.ENIID {
				t.Errorf("%s moved to %s's ENI %s", pod, n2.Name, e.ID)
			}
		}
	}
}

// firstLine is the "Error: …" line cnitool printed, or the error's first line.
func firstLine(err error) string {
	for _, l := range strings.Split(err.Error(), "\n") {
		if _, msg, ok := strings.Cut(l, "Error: "); ok {
			return msg
		}
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
