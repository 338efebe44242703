package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/conflist"
	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// binDir holds the egress-cni binary the tests execute (the golden output
// test and the privileged ones), built once per test binary as the
// Makefile builds it (PLUGIN_ENV).
var binDir string

// refPlugins is where Debian's containernetworking-plugins puts ptp,
// loopback and host-local (scripts/install-deps.sh installs them).
const refPlugins = "/usr/lib/cni"

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "egress-cni-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	build := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", filepath.Join(dir, "egress-cni"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOEXPERIMENT=nogreenteagc")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build egress-cni: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// Addresses of the test topology: a node whose eth0 faces an "internet"
// namespace that routes back only to the node's own addresses, so a reply
// reaches a pod's egress address only if the node SNATed it.
const (
	nodeV4     = "192.0.2.10"
	nodeV6     = "2001:db8:ff::10"
	internetV4 = "198.51.100.1"
	internetV6 = "2001:db8:1::1"
)

type topo struct {
	node, internet ns.NetNS
	dataDir        string
}

func newTopo(t *testing.T) *topo {
	t.Helper()
	testutil.Privileged(t)
	for _, p := range []string{"ptp", "loopback", "host-local"} {
		if _, err := os.Stat(filepath.Join(refPlugins, p)); err != nil {
			t.Skipf("reference CNI plugin %s missing (scripts/install-deps.sh installs containernetworking-plugins): %v", p, err)
		}
	}
	tp := &topo{node: testutil.NewNS(t), internet: testutil.NewNS(t), dataDir: t.TempDir()}
	err := tp.node.Do(func(ns.NetNS) error {
		for _, k := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile("/proc/sys/"+k, []byte("1"), 0o644); err != nil {
				return err
			}
		}
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "up0", PeerNamespace: netlink.NsFd(int(tp.internet.Fd()))}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		return configure("eth0", []string{nodeV4 + "/24", nodeV6 + "/64"}, []string{"192.0.2.1", "2001:db8:ff::1"})
	})
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	err = tp.internet.Do(func(ns.NetNS) error {
		if err := configure("up0", []string{"192.0.2.1/24", "2001:db8:ff::1/64"}, nil); err != nil {
			return err
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		for _, a := range []string{internetV4 + "/32", internetV6 + "/128"} {
			ad, _ := netlink.ParseAddr(a)
			ad.Flags = unix.IFA_F_NODAD
			if err := netlink.AddrAdd(lo, ad); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("internet: %v", err)
	}
	return tp
}

// addMainIf gives the pod its main interface, as the main plugin would
// have: a veth named name (IPv6 egress needs it).
func addMainIf(t *testing.T, pod ns.NetNS, name string) {
	t.Helper()
	err := pod.Do(func(ns.NetNS) error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "-peer"})
	})
	if err != nil {
		t.Fatalf("the pod's %s: %v", name, err)
	}
}

// configure puts addresses (without DAD) on a link, sets it up and adds
// default routes via gws.
func configure(name string, addrs, gws []string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		ad, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		ad.Flags = unix.IFA_F_NODAD
		if err := netlink.AddrAdd(l, ad); err != nil {
			return fmt.Errorf("add %s to %s: %w", a, name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	for _, g := range gws {
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(g)}); err != nil {
			return fmt.Errorf("default via %s: %w", g, err)
		}
	}
	return nil
}

// egressEntry is the egress-cni entry of the conflist the installer
// renders (pkg/conflist) for the family, with the test's dataDir and log
// file and, if given, a smaller subnet.
func (tp *topo) egressEntry(v6 bool, subnet string) string {
	e := &conflist.Egress{IPv6Cluster: !v6, Enabled: true, RandomizeSNAT: "prng", NodeIP: nodeV4}
	if v6 {
		e.NodeIP = nodeV6
	}
	return tp.entryOf(e, subnet)
}

// disabledEntry is the egress-cni entry the installer renders for the
// family with the feature off (no node IP), with the test's dataDir and
// log file.
func (tp *topo) disabledEntry(v6 bool) string {
	return tp.entryOf(&conflist.Egress{IPv6Cluster: !v6, RandomizeSNAT: "prng"}, "")
}

// entryOf is e's conflist entry with the test's dataDir and log file and,
// if given, a smaller subnet.
func (tp *topo) entryOf(e *conflist.Egress, subnet string) string {
	entry, err := renderedEgressEntry(e)
	if err != nil {
		panic(err) // the conflist package's own tests cover Render
	}
	ipam := entry["ipam"].(map[string]any)
	ipam["dataDir"] = filepath.Join(tp.dataDir, filepath.Base(ipam["dataDir"].(string)))
	if subnet != "" {
		ipam["ranges"] = [][]map[string]string{{{"subnet": subnet}}}
	}
	entry["pluginLogFile"] = filepath.Join(tp.dataDir, "egress.log")
	b, _ := json.Marshal(entry)
	return string(b)
}

// storeDir is the dataDir of the egress entry of the family (egressEntry
// and disabledEntry), which storeEntries reads.
func (tp *topo) storeDir(v6 bool) string {
	if v6 {
		return filepath.Join(tp.dataDir, "egress-v6-ipam")
	}
	return filepath.Join(tp.dataDir, "egress-v4-ipam")
}

// wantAddRefused runs an ADD of id into pod with CNI_IFNAME ifname and
// entry as it is, which must fail with code and a message containing
// want, leaving the pod, the node and the family's nat table as they
// were and no address held; then DEL with the same input must succeed,
// twice.
func (tp *topo) wantAddRefused(t *testing.T, v6 bool, pod ns.NetNS, id, ifname, entry string, code uint, want string) {
	t.Helper()
	podBefore, nodeBefore, natBefore := snapshot(t, pod.Path()), snapshot(t, tp.node.Path()), tp.nat(t, v6)
	e := execIf(t, tp, "ADD", id, pod.Path(), ifname, entry)
	if e == nil || e.Code != code || !strings.Contains(e.Msg, want) {
		t.Errorf("ADD: %v, want code %d containing %q", e, code, want)
	}
	wantLines(t, "pod after the ADD", snapshot(t, pod.Path()), podBefore)
	wantLines(t, "node after the ADD", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "nat after the ADD", tp.nat(t, v6), natBefore)
	if held := storeEntries(t, tp.storeDir(v6)); len(held) != 0 {
		t.Errorf("addresses held after the ADD: %v", held)
	}
	for i := range 2 {
		if e := execIf(t, tp, "DEL", id, pod.Path(), ifname, entry); e != nil {
			t.Errorf("DEL %d: %v", i+1, e)
		}
	}
}

// renderedEgressEntry renders the installer's conflist and returns its
// egress-cni entry.
func renderedEgressEntry(e *conflist.Egress) (map[string]any, error) {
	b, err := conflist.Render(conflist.Config{VethPrefix: "eni", MTU: 9001, PodSGEnforcingMode: "strict", PluginLogLevel: "DEBUG", Egress: e})
	if err != nil {
		return nil, err
	}
	var l struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	for _, p := range l.Plugins {
		if p["type"] == "egress-cni" {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no egress-cni entry in\n%s", b)
}

// list builds a conflist: main plugin entry, then the egress entry.
func list(t *testing.T, cniVersion, main, egress string) *libcni.NetworkConfigList {
	t.Helper()
	l, err := libcni.ConfListFromBytes(fmt.Appendf(nil, `{"cniVersion":%q,"name":"aws-cni","disableCheck":false,"plugins":[%s,%s]}`, cniVersion, main, egress))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// ptpEntry wires the pod's main interface with the reference ptp plugin
// (standing in for aws-cni, which needs ipamd): IPv6-only or IPv4-only.
func (tp *topo) ptpEntry(v6 bool) string {
	subnet := "10.9.0.0/24"
	if v6 {
		subnet = "2001:db8:9::/64"
	}
	return fmt.Sprintf(`{"type":"ptp","ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"routes":[{"dst":%q}],"dataDir":%q}}`,
		subnet, map[bool]string{false: "0.0.0.0/0", true: "::/0"}[v6], filepath.Join(tp.dataDir, "ptp-ipam"))
}

// loopbackEntry is the cheapest main plugin: a result for lo, no DAD.
const loopbackEntry = `{"type":"loopback"}`

func (tp *topo) cni(t *testing.T) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{binDir, refPlugins}, filepath.Join(tp.dataDir, "cache"), nil)
}

func runtimeConf(id, netns string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: id, NetNS: netns, IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", id}},
	}
}

// inNode runs f in the node's namespace: plugins exec'd from there inherit it.
func (tp *topo) inNode(f func() error) error {
	return tp.node.Do(func(ns.NetNS) error { return f() })
}

// nat returns `iptables -t nat -S` (or ip6tables) in the node.
func (tp *topo) nat(t *testing.T, v6 bool) []string {
	t.Helper()
	bin := "iptables"
	if v6 {
		bin = "ip6tables"
	}
	var out []byte
	err := tp.inNode(func() error {
		var err error
		out, err = exec.Command(bin, "-w", "-t", "nat", "-S").CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("%s -t nat -S: %v: %s", bin, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func snapshot(t *testing.T, path string) []string {
	t.Helper()
	s, err := podnettest.Snapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// only keeps the lines mentioning any of words.
func only(lines []string, words ...string) []string {
	var out []string
	for _, l := range lines {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if d := podnettest.Diff(want, got); d != "" {
		t.Errorf("%s differs (- want, + got):\n%s", what, d)
	}
}

// seenFrom dials addr:port from namespace src to a listener in dst and
// returns the source address the listener saw.
func seenFrom(src, dst ns.NetNS, addr string) (string, error) {
	var ln net.Listener
	err := dst.Do(func(ns.NetNS) error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(addr, "0"))
		return err
	})
	if err != nil {
		return "", err
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			seen <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		_, _ = c.Write([]byte("ok"))
		seen <- host
	}()
	err = src.Do(func(ns.NetNS) error {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2)
		_, err = c.Read(buf)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", ln.Addr(), err)
	}
	return <-seen, nil
}

var ctx = context.Background()

// pluginEnv is the environment of one egress-cni run: ifname "" is eth0,
// path "" the test's own PATH. A GC gets no container, namespace or
// interface.
type pluginEnv struct {
	command, id, netns, ifname, path string
}

// start starts egress-cni in the node's namespace with env and the netconf
// conf on stdin, returning the running command and its stdout.
func (tp *topo) start(env pluginEnv, conf map[string]any) (*exec.Cmd, *bytes.Buffer, error) {
	stdin, err := json.Marshal(conf)
	if err != nil {
		return nil, nil, err
	}
	vars := []string{"CNI_COMMAND=" + env.command, "CNI_PATH=" + refPlugins, "PATH=" + cmp.Or(env.path, os.Getenv("PATH"))}
	if env.command != "GC" {
		vars = append(vars, "CNI_CONTAINERID="+env.id, "CNI_NETNS="+env.netns, "CNI_IFNAME="+cmp.Or(env.ifname, "eth0"))
	}
	var stdout bytes.Buffer
	cmd := exec.Command(filepath.Join(binDir, "egress-cni"))
	cmd.Env, cmd.Stdin, cmd.Stdout = vars, bytes.NewReader(stdin), &stdout
	if err := tp.inNode(cmd.Start); err != nil {
		return nil, nil, err
	}
	return cmd, &stdout, nil
}

// runPlugin runs egress-cni as start does, to its end: what it printed and
// how it exited.
func (tp *topo) runPlugin(env pluginEnv, conf map[string]any) (string, error) {
	cmd, stdout, err := tp.start(env, conf)
	if err != nil {
		return "", err
	}
	err = cmd.Wait()
	return stdout.String(), err
}

// cniError is the CNI error a run of command printed, nil when it
// succeeded.
func cniError(t *testing.T, command, stdout string, runErr error) *types.Error {
	t.Helper()
	if runErr == nil {
		return nil
	}
	e := &types.Error{}
	if err := json.Unmarshal([]byte(stdout), e); err != nil {
		t.Fatalf("%s failed (%v) without a CNI error: %q", command, runErr, stdout)
	}
	return e
}

// entryConf is the netconf entry, as JSON, with the runtime's version and
// network name.
func entryConf(entry, cniVersion, network string) (map[string]any, error) {
	var conf map[string]any
	if err := json.Unmarshal([]byte(entry), &conf); err != nil {
		return nil, err
	}
	conf["cniVersion"], conf["name"] = cniVersion, network
	return conf, nil
}

// chainedConf is entry as a runtime passes it to the second plugin of the
// 1.0.0 chain aws-cni: with a loopback prevResult in netns.
func chainedConf(entry, netns string) (map[string]any, error) {
	conf, err := entryConf(entry, "1.0.0", "aws-cni")
	if err != nil {
		return nil, err
	}
	conf["prevResult"] = map[string]any{"cniVersion": "1.0.0", "interfaces": []map[string]any{{"name": "lo", "sandbox": netns}}}
	return conf, nil
}

// execPlugin runs egress-cni directly with a loopback prevResult, as the
// second plugin of a chain, with PATH set to path.
func execPlugin(t *testing.T, tp *topo, command, id, netns, path, entry string) *types.Error {
	t.Helper()
	conf, err := chainedConf(entry, netns)
	if err != nil {
		t.Fatal(err)
	}
	return execConf(t, tp, command, id, netns, path, conf)
}

// execConf runs egress-cni directly with the netconf conf and PATH path.
func execConf(t *testing.T, tp *topo, command, id, netns, path string, conf map[string]any) *types.Error {
	t.Helper()
	out, err := tp.runPlugin(pluginEnv{command: command, id: id, netns: netns, path: path}, conf)
	return cniError(t, command, out, err)
}

// execIf runs egress-cni directly with entry as it is (no prevResult
// added) and CNI_IFNAME ifname.
func execIf(t *testing.T, tp *topo, command, id, netns, ifname, entry string) *types.Error {
	t.Helper()
	conf, err := entryConf(entry, "1.0.0", "aws-cni")
	if err != nil {
		t.Fatal(err)
	}
	out, err := tp.runPlugin(pluginEnv{command: command, id: id, netns: netns, ifname: ifname}, conf)
	return cniError(t, command, out, err)
}

// execQuiet runs egress-cni as execPlugin does, returning its error
// instead of failing the test (it runs in a goroutine).
func execQuiet(tp *topo, command, id, netns, path, entry string) error {
	conf, err := chainedConf(entry, netns)
	if err != nil {
		return err
	}
	if out, err := tp.runPlugin(pluginEnv{command: command, id: id, netns: netns, path: path}, conf); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// startPlugin starts egress-cni in the node's namespace as execPlugin
// runs it, returning the running command and its stdout.
func startPlugin(t *testing.T, tp *topo, command, id, netns, entry string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	conf, err := chainedConf(entry, netns)
	if err != nil {
		t.Fatal(err)
	}
	cmd, stdout, err := tp.start(pluginEnv{command: command, id: id, netns: netns}, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, stdout
}

// runGC runs a CNI 1.1 GC of network with entry and the runtime's valid
// attachments, encoded as a runtime written in Go encodes them.
func runGC(tp *topo, entry, network string, valid ...types.GCAttachment) (string, error) {
	conf, err := entryConf(entry, "1.1.0", network)
	if err != nil {
		return "", err
	}
	delete(conf, "prevResult")
	conf["cni.dev/valid-attachments"] = append([]types.GCAttachment{}, valid...)
	return tp.runPlugin(pluginEnv{command: "GC"}, conf)
}

// onEth0 are the attachments, on eth0, of the containers ids.
func onEth0(ids ...string) []types.GCAttachment {
	var out []types.GCAttachment
	for _, id := range ids {
		out = append(out, types.GCAttachment{ContainerID: id, IfName: "eth0"})
	}
	return out
}
