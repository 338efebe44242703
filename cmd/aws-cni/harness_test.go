package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// pluginBin is the aws-cni binary the privileged tests execute, built once
// per test binary.
var pluginBin string

// pluginBinEnv names a prebuilt aws-cni to test instead of building one.
const pluginBinEnv = "VPC_CNI_PLUGIN_BIN"

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if bin := os.Getenv(pluginBinEnv); bin != "" {
		// A prebuilt plugin, e.g. an older build to compare in the bench.
		pluginBin = bin
	} else if os.Getenv(testutil.PrivilegedEnv) == "1" {
		dir, err := os.MkdirTemp("", "aws-cni-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		pluginBin = filepath.Join(dir, "aws-cni")
		// Built as make build builds it (Makefile PLUGIN_ENV, PLUGIN_TAGS).
		cmd := exec.Command("go", "build", "-tags", "grpcnotrace", "-o", pluginBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOEXPERIMENT=nogreenteagc")
		out, err := cmd.CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build aws-cni: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

// node is a namespace standing in for a Kubernetes node: forwarding on and
// an address of its own on lo.
type node struct {
	ns ns.NetNS
	ip net.IP
}

func newNode(t testing.TB, ip string) node {
	t.Helper()
	n := node{ns: testutil.NewNS(t), ip: net.ParseIP(ip)}
	err := n.ns.Do(func(ns.NetNS) error {
		for _, key := range []string{"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile("/proc/sys/"+key, []byte("1"), 0o644); err != nil {
				return err
			}
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.AddrAdd(lo, &netlink.Addr{IPNet: singleHost(n.ip)})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// invocation of the plugin binary as a runtime would make it.
type call struct {
	command     string
	containerID string
	netns       string
	ifName      string
	podName     string
	podNS       string
	conf        map[string]any
	ipamd, npa  string
	// cniArgs, when set, is CNI_ARGS as is instead of the one built from
	// the pod's name and namespace.
	cniArgs string
}

// outcome of one plugin run: its stdout and, on failure, the CNI error.
type outcome struct {
	stdout []byte
	err    *types.Error
}

// run executes the plugin inside the node's namespace: the child inherits
// the namespace of the locked thread that starts it.
func (n node) run(t testing.TB, c call) outcome {
	t.Helper()
	stdout, stderr, runErr := n.runRaw(t, c)
	o := outcome{stdout: stdout}
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &exitErr):
		o.err = &types.Error{}
		if err := json.Unmarshal(o.stdout, o.err); err != nil {
			t.Fatalf("%s failed (%v) without a CNI error on stdout: %q, stderr %q", c.command, runErr, o.stdout, stderr)
		}
	default:
		t.Fatalf("run plugin: %v", runErr)
	}
	return o
}

// runRaw executes the plugin as run does and returns what it printed and
// how it exited, unparsed: for tests whose outcome may be no single CNI
// document.
func (n node) runRaw(t testing.TB, c call) (stdout, stderr []byte, runErr error) {
	t.Helper()
	stdin, err := json.Marshal(c.conf)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = n.ns.Do(func(ns.NetNS) error {
		cmd := c.cmd(stdin)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		runErr = cmd.Run()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), errOut.Bytes(), runErr
}

// cmd is the plugin's process for c, as the runtime starts it.
func (c call) cmd(stdin []byte) *exec.Cmd {
	cniArgs := c.cniArgs
	if cniArgs == "" {
		cniArgs = "IgnoreUnknown=1;K8S_POD_NAMESPACE=" + c.podNS + ";K8S_POD_NAME=" + c.podName + ";K8S_POD_INFRA_CONTAINER_ID=" + c.containerID
	}
	cmd := exec.Command(pluginBin)
	cmd.Env = []string{
		"CNI_COMMAND=" + c.command,
		"CNI_CONTAINERID=" + c.containerID,
		"CNI_NETNS=" + c.netns,
		"CNI_IFNAME=" + c.ifName,
		"CNI_PATH=/opt/cni/bin",
		"CNI_ARGS=" + cniArgs,
		ipamdSocketEnv + "=" + c.ipamd,
		npaSocketEnv + "=" + c.npa,
	}
	cmd.Stdin = bytes.NewReader(stdin)
	return cmd
}

// mustSucceed fails the test if the plugin reported an error.
func (o outcome) mustSucceed(t testing.TB, what string) {
	t.Helper()
	if o.err != nil {
		t.Fatalf("%s failed: code %d: %s", what, o.err.Code, o.err.Error())
	}
}

// wantCode fails the test unless the plugin failed with code.
func (o outcome) wantCode(t *testing.T, what string, code uint, msgPart string) {
	t.Helper()
	if o.err == nil {
		t.Fatalf("%s succeeded, want CNI error %d", what, code)
	}
	if o.err.Code != code || !strings.Contains(o.err.Error(), msgPart) {
		t.Fatalf("%s: error code %d %q, want code %d containing %q", what, o.err.Code, o.err.Error(), code, msgPart)
	}
}

// result parses an ADD's stdout in the netconf's version and converts it.
func (o outcome) result(t *testing.T, cniVersion string) *current.Result {
	t.Helper()
	r, err := version.NewResult(cniVersion, o.stdout)
	if err != nil {
		t.Fatalf("parse %s result %s: %v", cniVersion, o.stdout, err)
	}
	if r.Version() != cniVersion {
		t.Errorf("result version %s, want %s", r.Version(), cniVersion)
	}
	res, err := current.NewResultFromResult(r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// netconf is the plugin's entry of 10-aws.conflist, as the runtime passes
// it, with prevResult when given.
func netconf(cniVersion string, prev []byte, extra map[string]any) map[string]any {
	c := map[string]any{
		"cniVersion":         cniVersion,
		"name":               "aws-cni",
		"type":               "aws-cni",
		"vethPrefix":         "eni",
		"mtu":                "9001",
		"podSGEnforcingMode": "strict",
		"pluginLogLevel":     "Debug",
		"capabilities":       map[string]bool{"io.kubernetes.cri.pod-annotations": true},
	}
	if prev != nil {
		var raw map[string]any
		if err := json.Unmarshal(prev, &raw); err == nil {
			c["prevResult"] = raw
		}
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func snapshot(t *testing.T, path string) []string {
	t.Helper()
	s, err := podnettest.Snapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantState(t *testing.T, what, path string, want []string) {
	t.Helper()
	if d := podnettest.Diff(want, snapshot(t, path)); d != "" {
		t.Errorf("%s state differs (-want +got):\n%s", what, d)
	}
}

func linkMAC(t *testing.T, n node, name string) string {
	t.Helper()
	var mac string
	err := n.ns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		mac = l.Attrs().HardwareAddr.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// removeNetNS deletes a pod netns the way a runtime does after DEL, so the
// test can run DEL against a namespace that is gone.
func removeNetNS(t *testing.T, n ns.NetNS) {
	t.Helper()
	path := n.Path()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// sandboxGone removes a pod's netns as the runtime does after DEL and
// waits for the kernel to remove the host veths whose peers were in it.
func (n node) sandboxGone(t *testing.T, pod ns.NetNS, hostVeths ...string) {
	t.Helper()
	removeNetNS(t, pod)
	if err := podnettest.WaitLinksGone(n.ns.Path(), 30*time.Second, hostVeths...); err != nil {
		t.Fatal(err)
	}
}
