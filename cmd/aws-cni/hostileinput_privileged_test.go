package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedHostileRuntimeInput: each malformed CNI_IFNAME, CNI_NETNS,
// CNI_ARGS or CNI_CONTAINERID a runtime could send makes ADD fail with a
// CNI error naming the input, before ipamd is asked and with nothing left
// on the node or in the pod's namespace. A DEL with the same input fails
// the same way only when the input is malformed as such; where it only
// names what no ADD could have wired (the pod's loopback, a path that is
// no pod namespace, an over-long container id an older build may have
// taken, a CNI_ARGS value longer than any Kubernetes name) DEL succeeds,
// as the runtime would otherwise retry it forever.
func TestPrivilegedHostileRuntimeInput(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.31", routeTable: 254})
	podNS := testutil.NewNS(t)
	dir := t.TempDir()
	podArgs := func(name string) string {
		return "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=" + name
	}
	longID := "c" + strings.Repeat("0123456789abcdef", 320)
	const delOK = 0
	for i, c := range []struct {
		name    string
		mod     func(*call)
		code    uint
		want    string
		delCode uint // delOK: DEL succeeds
		delWant string
	}{
		{name: "CNI_IFNAME too long", mod: func(c *call) { c.ifName = "a-sixteen-chars!" },
			code: types.ErrInvalidEnvironmentVariables, want: `CNI_IFNAME "a-sixteen-chars!" is 16 characters long, at most 15 allowed`, delCode: types.ErrInvalidEnvironmentVariables},
		{name: "CNI_IFNAME with a slash", mod: func(c *call) { c.ifName = "eth/0" },
			code: types.ErrInvalidEnvironmentVariables, want: `CNI_IFNAME "eth/0" contains '/'`, delCode: types.ErrInvalidEnvironmentVariables},
		{name: "CNI_IFNAME with a space", mod: func(c *call) { c.ifName = "eth 0" },
			code: types.ErrInvalidEnvironmentVariables, want: `CNI_IFNAME "eth 0" contains`, delCode: types.ErrInvalidEnvironmentVariables},
		{name: "CNI_IFNAME empty", mod: func(c *call) { c.ifName = "" },
			code: types.ErrInvalidEnvironmentVariables, want: `CNI_IFNAME "" is empty`, delCode: types.ErrInvalidEnvironmentVariables},
		{name: "CNI_IFNAME lo", mod: func(c *call) { c.ifName = "lo" },
			code: types.ErrInvalidEnvironmentVariables, want: `CNI_IFNAME "lo" is the namespace's loopback interface`, delCode: delOK},
		{name: "CNI_IFNAME all", mod: func(c *call) { c.ifName = "all" },
			code: types.ErrInvalidEnvironmentVariables, want: `CNI_IFNAME "all" is not a name the kernel gives an interface`, delCode: delOK},
		{name: "CNI_IFNAME default", mod: func(c *call) { c.ifName = "default" },
			code: types.ErrInvalidEnvironmentVariables, want: `CNI_IFNAME "default" is not a name the kernel gives an interface`, delCode: delOK},
		{name: "CNI_IFNAME not UTF-8", mod: func(c *call) { c.ifName = "eth\xff" },
			code: types.ErrInvalidEnvironmentVariables, want: `CNI_IFNAME "eth\xff" is not valid UTF-8`, delCode: delOK},
		{name: "CNI_IFNAME a kernel name pattern", mod: func(c *call) { c.ifName = "eth%d" },
			code: types.ErrInvalidEnvironmentVariables, want: `CNI_IFNAME "eth%d" contains '%', which the kernel reads as a pattern`, delCode: delOK},
		{name: "CNI_NETNS relative", mod: func(c *call) { c.netns = "var/run/netns/pod" },
			code: types.ErrInvalidNetNS, want: "CNI_NETNS: network namespace var/run/netns/pod is not an absolute path", delCode: delOK},
		{name: "CNI_NETNS relative to the plugin's own", mod: func(c *call) { c.netns = "../../../../../../../../proc/self/ns/net" },
			code: types.ErrInvalidNetNS, want: "CNI_NETNS: network namespace ../../../../../../../../proc/self/ns/net is not an absolute path",
			delCode: types.ErrInvalidNetNS, delWant: "plugin's netns and netns from CNI_NETNS should not be the same"},
		{name: "CNI_NETNS a directory", mod: func(c *call) { c.netns = dir },
			code: types.ErrInvalidNetNS, want: "CNI_NETNS: network namespace " + dir + " is not a network namespace", delCode: delOK},
		// DEL into the plugin's own namespace gets the CNI library's code
		// 8 after the plugin ran, as with upstream's plugin; it touched
		// nothing there (TestPrivilegedHostileRuntime).
		{name: "CNI_NETNS the plugin's own", mod: func(c *call) { c.netns = "/proc/self/ns/net" },
			code: types.ErrInvalidNetNS, want: "CNI_NETNS: network namespace /proc/self/ns/net is the plugin's own network namespace",
			delCode: types.ErrInvalidNetNS, delWant: "plugin's netns and netns from CNI_NETNS should not be the same"},
		{name: "CNI_ARGS pair without '='", mod: func(c *call) { c.cniArgs = podArgs("in") + ";K8S_POD_UID" },
			code: types.ErrInvalidNetworkConfig, want: `CNI_ARGS entry "K8S_POD_UID" is not KEY=VALUE`, delCode: types.ErrInvalidNetworkConfig},
		{name: "CNI_ARGS huge value", mod: func(c *call) { c.cniArgs = podArgs("in") + ";K8S_POD_UID=" + strings.Repeat("u", 100000) },
			code: types.ErrInvalidNetworkConfig, want: "CNI_ARGS K8S_POD_UID is 100000 characters long, at most 253 allowed", delCode: delOK},
		{name: "CNI_ARGS pod name over 253", mod: func(c *call) { c.podName = strings.Repeat("p", 254) },
			code: types.ErrInvalidNetworkConfig, want: "CNI_ARGS K8S_POD_NAME is 254 characters long, at most 253 allowed", delCode: delOK},
		{name: "CNI_ARGS namespace over 253", mod: func(c *call) { c.podNS = strings.Repeat("n", 300) },
			code: types.ErrInvalidNetworkConfig, want: "CNI_ARGS K8S_POD_NAMESPACE is 300 characters long, at most 253 allowed", delCode: delOK},
		{name: "CNI_ARGS key given twice", mod: func(c *call) { c.cniArgs = podArgs("in") + ";K8S_POD_NAME=other" },
			code: types.ErrInvalidNetworkConfig, want: `CNI_ARGS K8S_POD_NAME is given twice ("in", "other")`, delCode: delOK},
		{name: "CNI_ARGS pod name with a slash", mod: func(c *call) { c.cniArgs = podArgs("in/../x") },
			code: types.ErrInvalidNetworkConfig, want: `CNI_ARGS K8S_POD_NAME "in/../x" contains '/'`, delCode: delOK},
		{name: "CNI_ARGS namespace with a slash", mod: func(c *call) { c.cniArgs = "K8S_POD_NAMESPACE=kube/system;K8S_POD_NAME=in" },
			code: types.ErrInvalidNetworkConfig, want: `CNI_ARGS K8S_POD_NAMESPACE "kube/system" contains '/'`, delCode: delOK},
		{name: "CNI_ARGS pod name not UTF-8", mod: func(c *call) { c.cniArgs = podArgs("in\xff") },
			code: types.ErrInvalidNetworkConfig, want: `CNI_ARGS K8S_POD_NAME "in\xff" is not valid UTF-8`, delCode: delOK},
		{name: "CNI_ARGS pod UID not UTF-8", mod: func(c *call) { c.cniArgs = podArgs("in") + ";K8S_POD_UID=\xc3\x28" },
			code: types.ErrInvalidNetworkConfig, want: `CNI_ARGS K8S_POD_UID "\xc3(" is not valid UTF-8`, delCode: delOK},
		{name: "CNI_CONTAINERID empty", mod: func(c *call) { c.containerID = "" },
			code: types.ErrInvalidEnvironmentVariables, want: "required env variables [CNI_CONTAINERID] missing", delCode: types.ErrInvalidEnvironmentVariables},
		{name: "CNI_CONTAINERID very long", mod: func(c *call) { c.containerID, c.cniArgs = longID, podArgs("in") },
			code: types.ErrInvalidEnvironmentVariables, want: "CNI_CONTAINERID is 5121 characters long, at most 1024 allowed", delCode: delOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			add := call{command: "ADD", containerID: fmt.Sprintf("ctr-in-%d", i), netns: podNS.Path(), ifName: "eth0", podName: "in", podNS: "default",
				conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			c.mod(&add)
			n.run(t, add).wantCode(t, "ADD with "+c.name, c.code, c.want)
			if got := ipamd.addsFor(add.containerID); len(got) != 0 {
				t.Errorf("ADD with %s asked ipamd", c.name)
			}
			del := add
			del.command = "DEL"
			out := n.run(t, del)
			switch {
			case c.delCode == delOK:
				out.mustSucceed(t, "DEL with "+c.name)
			case c.delWant != "":
				out.wantCode(t, "DEL with "+c.name, c.delCode, c.delWant)
			default:
				out.wantCode(t, "DEL with "+c.name, c.delCode, c.want)
			}
			wantState(t, "node", n.ns.Path(), nil)
			wantState(t, "pod", podNS.Path(), nil)
		})
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*")); len(matches) != 0 {
		t.Errorf("the directory given as CNI_NETNS holds %v", matches)
	}
}

// TestPrivilegedAddNamespaceWithDotKeepsOtherPod: the host veth's name
// hashes "<namespace>.<pod name>", so a CNI_ARGS namespace "default.web"
// with pod name "x" names the veth of pod "web.x" in "default" (pod names
// may contain dots; namespaces, DNS labels, cannot). ADD with such a
// namespace is refused naming it, before ipamd is asked, and the running
// pod keeps its veth, routes and traffic.
func TestPrivilegedAddNamespaceWithDotKeepsOtherPod(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.50", routeTable: 254}, allocation{ip: "10.0.0.51", routeTable: 254})
	victimNS := testutil.NewNS(t)
	victim := call{command: "ADD", containerID: "ctr-victim", netns: victimNS.Path(), ifName: "eth0", podName: "web.x", podNS: "default",
		conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	n.run(t, victim).mustSucceed(t, "ADD pod web.x")
	if got, other := vethname.HostVethName("eni", "default", "web.x", 0), vethname.HostVethName("eni", "default.web", "x", 0); got != other {
		t.Fatalf("names differ (%s, %s): the test no longer shows a collision", got, other)
	}
	before := snapshot(t, n.ns.Path())

	evil := call{command: "ADD", containerID: "ctr-dot", netns: testutil.NewNS(t).Path(), ifName: "eth0", podName: "x", podNS: "default.web",
		conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	out := n.run(t, evil)
	wantState(t, "node", n.ns.Path(), before)
	if err := podnettest.Connect(n.ns.Path(), victimNS.Path(), net.ParseIP("10.0.0.50")); err != nil {
		t.Errorf("node to pod web.x: %v", err)
	}
	if got := ipamd.addsFor(evil.containerID); len(got) != 0 {
		t.Errorf("ADD with a dotted namespace asked ipamd")
	}
	out.wantCode(t, "ADD with a dotted namespace", types.ErrInvalidNetworkConfig, `CNI_ARGS K8S_POD_NAMESPACE "default.web" contains '.'`)
}
