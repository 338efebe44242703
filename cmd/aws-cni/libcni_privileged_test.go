package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// conflist mirrors the aws-cni entry of upstream's 10-aws.conflist
// (docs/compatibility.md, "Conflist template"), pointed at the in-test ipamd.
func conflist(cniVersion string, disableCheck bool, socket, logFile string) []byte {
	return fmt.Appendf(nil, `{
  "cniVersion": %q,
  "name": "aws-cni",
  "disableCheck": %t,
  "plugins": [{
    "name": "aws-cni",
    "type": "aws-cni",
    "vethPrefix": "eni",
    "mtu": "9001",
    "podSGEnforcingMode": "strict",
    "pluginLogFile": %q,
    "pluginLogLevel": "Debug",
    "capabilities": {"io.kubernetes.cri.pod-annotations": true},
    "ipamdSocket": %q
  }]
}`, cniVersion, disableCheck, logFile, socket)
}

// TestPrivilegedLibcni drives the plugin through libcni, the library
// container runtimes use: conflist loading, result caching, and the
// prevResult it injects into CHECK and DEL.
func TestPrivilegedLibcni(t *testing.T) {
	testutil.Privileged(t)
	for _, v := range []string{"0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			n := newNode(t, "192.168.0.10")
			ipamd := startFakeIpamd(t, allocation{ip: "10.1.0.20", deviceNumber: 1, routeTable: 2})
			podNS := testutil.NewNS(t)
			list, err := libcni.ConfListFromBytes(conflist(v, false, ipamd.socket, filepath.Join(t.TempDir(), "plugin.log")))
			if err != nil {
				t.Fatal(err)
			}
			cni := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(pluginBin)}, t.TempDir(), nil)
			rt := &libcni.RuntimeConf{
				ContainerID: "ctr-libcni",
				NetNS:       podNS.Path(),
				IfName:      "eth0",
				Args:        [][2]string{{"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "lib"}, {"K8S_POD_INFRA_CONTAINER_ID", "ctr-libcni"}},
				CapabilityArgs: map[string]any{
					"io.kubernetes.cri.pod-annotations": map[string]string{"k8s.amazonaws.com/nicConfig": "none"},
				},
			}
			ctx := context.Background()
			inNode := func(f func() error) error { return n.ns.Do(func(ns.NetNS) error { return f() }) }

			var res *current.Result
			if err := inNode(func() error {
				r, err := cni.AddNetworkList(ctx, list, rt)
				if err != nil {
					return err
				}
				res, err = current.NewResultFromResult(r)
				return err
			}); err != nil {
				t.Fatalf("ADD: %v", err)
			}
			if len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.1.0.20/32" {
				t.Errorf("ADD result IPs %v", res.IPs)
			}
			if err := inNode(func() error { return cni.CheckNetworkList(ctx, list, rt) }); err != nil {
				t.Errorf("CHECK: %v", err)
			}
			if v == "1.1.0" {
				if err := inNode(func() error { return cni.GetStatusNetworkList(ctx, list) }); err != nil {
					t.Errorf("STATUS: %v", err)
				}
			}
			for i := range 2 {
				if err := inNode(func() error { return cni.DelNetworkList(ctx, list, rt) }); err != nil {
					t.Errorf("DEL %d: %v", i+1, err)
				}
			}
			if ipamd.holds("ctr-libcni") {
				t.Error("ipamd still holds the address after DEL")
			}
			veth := vethname.HostVethName("eni", "default", "lib", 0)
			wantState(t, "node after DEL", n.ns.Path(), []string{"link " + veth + " veth up mtu 9001"})
			n.sandboxGone(t, podNS, veth)
			wantState(t, "node after the sandbox went", n.ns.Path(), nil)
		})
	}
}
