package localvpc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

func TestHostPathMapsOnlyPrivateDirectories(t *testing.T) {
	n := &Node{Dir: "/tmp/run/i-1"}
	for in, want := range map[string]string{
		"/etc/cni/net.d/10-aws.conflist": "/tmp/run/i-1/etc/cni/net.d/10-aws.conflist",
		"/var/run/aws-node/ipam.json":    "/tmp/run/i-1/var/run/aws-node/ipam.json",
		"/opt/cni/bin":                   "/tmp/run/i-1/opt/cni/bin",
		"/opt/cni/binary":                "/opt/cni/binary", // not below /opt/cni/bin
		"/usr/bin/true":                  "/usr/bin/true",
	} {
		if got := n.HostPath(in); got != want {
			t.Errorf("HostPath(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestVPCEchoAddrIsBasePlusTwo(t *testing.T) {
	got, err := VPCEchoAddr(vpcsim.Scenario{VPCs: []vpcsim.VPCSpec{{CIDR: "10.0.0.0/16"}}})
	if err != nil || got.String() != "10.0.0.2" {
		t.Errorf("VPCEchoAddr = %v, %v; want 10.0.0.2", got, err)
	}
	if _, err := VPCEchoAddr(vpcsim.Scenario{}); err == nil {
		t.Error("no VPC: no error")
	}
	if _, err := VPCEchoAddr(vpcsim.Scenario{VPCs: []vpcsim.VPCSpec{{CIDR: "10.0.0/16"}}}); err == nil || !strings.Contains(err.Error(), "10.0.0/16") {
		t.Errorf("bad CIDR: err = %v, want it to name the CIDR", err)
	}
}

func TestAgentModeFollowsTheBuiltBinaries(t *testing.T) {
	dir := t.TempDir()
	v := &VPC{cfg: Config{BinDir: dir}}
	if _, err := v.AgentMode(); err == nil || !strings.Contains(err.Error(), IPAMDBin) {
		t.Fatalf("empty bin dir: err = %v, want it to name %s", err, IPAMDBin)
	}
	for _, b := range []string{IPAMDBin, PluginBin} {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := v.AgentMode(); err != nil || m != ModeIPAMD {
		t.Errorf("ipamd + plugin: mode %q, err %v; want %q", m, err, ModeIPAMD)
	}
	if err := os.WriteFile(filepath.Join(dir, InstallerBin), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, _ := v.AgentMode(); m != ModeIPAMD {
		t.Errorf("non-executable installer was chosen (mode %q)", m)
	}
	if err := os.Chmod(filepath.Join(dir, InstallerBin), 0o755); err != nil {
		t.Fatal(err)
	}
	if m, err := v.AgentMode(); err != nil || m != ModeInstaller {
		t.Errorf("with the installer: mode %q, err %v; want %q", m, err, ModeInstaller)
	}
	if _, err := (&VPC{}).AgentMode(); err == nil {
		t.Error("no bin dir: no error")
	}
}

func TestPluginErrorKeepsTheCNIError(t *testing.T) {
	run := errors.New("exit status 1")
	err := pluginError(run, []byte(`{"cniVersion":"0.4.0","code":11,"msg":"ipamd unavailable"}`), nil)
	var te *types.Error
	if !errors.As(err, &te) || te.Code != 11 || te.Msg != "ipamd unavailable" {
		t.Errorf("pluginError = %#v, want the plugin's CNI error", err)
	}
	err = pluginError(run, []byte("not json"), []byte("boom"))
	if err == nil || !strings.Contains(err.Error(), "boom") || !errors.Is(err, run) {
		t.Errorf("non-JSON output: err = %v, want it to wrap the exit error and show stderr", err)
	}
}

func TestTimingExecSumsOnePluginsRuns(t *testing.T) {
	tm := Timing{CNI: 9 * time.Millisecond, Plugins: []PluginTime{
		{"aws-cni", 3 * time.Millisecond}, {"portmap", time.Millisecond}, {"aws-cni", 2 * time.Millisecond},
	}}
	if d, ok := tm.Exec("aws-cni"); !ok || d != 5*time.Millisecond {
		t.Errorf("Exec(aws-cni) = %v, %v; want 5ms, true", d, ok)
	}
	if d, ok := tm.Exec("egress-cni"); ok || d != 0 {
		t.Errorf("Exec(egress-cni) = %v, %v; want 0, false", d, ok)
	}
}

// Two instances that would be the same node are refused before anything
// is created, naming the name; Name tags that differ are fine.
func TestStartRefusesARepeatedNodeName(t *testing.T) {
	sc := vpcsim.Scenario{
		Region: "us-west-2",
		VPCs: []vpcsim.VPCSpec{{ID: "vpc-00000000000000001", CIDR: "10.0.0.0/16", Subnets: []vpcsim.SubnetSpec{
			{ID: "subnet-00000000000000001", AZ: "us-west-2a", CIDR: "10.0.0.0/20"}}}},
	}
	inst := func(id, name string) vpcsim.InstanceSpec {
		return vpcsim.InstanceSpec{ID: id, Type: "m5.large", Subnet: "subnet-00000000000000001", Tags: map[string]string{"Name": name}}
	}
	for _, tc := range []struct {
		insts []vpcsim.InstanceSpec
		want  string
	}{
		{[]vpcsim.InstanceSpec{inst("i-00000000000000001", "node-1"), inst("i-00000000000000002", "node-1")}, `node name "node-1" is already used by instances[0] (i-00000000000000001)`},
		{[]vpcsim.InstanceSpec{inst("i-00000000000000001", "node-1"), inst("i-00000000000000002", "i-00000000000000001")}, `node name "i-00000000000000001" is already used by instances[0]`},
	} {
		sc.Instances = tc.insts
		work := t.TempDir()
		v, err := Start(t.Context(), Config{Scenario: sc, WorkDir: work})
		if err == nil {
			_ = v.Close()
			t.Errorf("Start with nodes %v: no error", tc.insts)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start: err = %v, want it to contain %q", err, tc.want)
		}
		if ents, _ := os.ReadDir(work); len(ents) != 0 {
			t.Errorf("Start refused but left %d entries in its work directory", len(ents))
		}
	}
	if err := checkNodeNames(vpcsim.Scenario{Instances: []vpcsim.InstanceSpec{inst("", "a"), inst("", "b"), inst("i-1", "")}}); err != nil {
		t.Errorf("distinct names: %v", err)
	}
}
