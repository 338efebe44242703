package cniplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/rpc"
	"github.com/vpc-cni/vpc-cni/test/vm/vlanenv"
)

// PluginEnv names the aws-cni binary; test/vm sets it in the guest.
const PluginEnv = "VPC_CNI_AWS_CNI"

// branchIpamd answers every ADD as ipamd does for a pod whose branch ENI
// the resource controller annotated, and every DEL with the same branch.
type branchIpamd struct {
	rpc.UnimplementedCNIBackendServer
	trunk int32

	mu         sync.Mutex
	adds, dels int
}

func (b *branchIpamd) meta() []*rpc.IPAllocationMetadata {
	return []*rpc.IPAllocationMetadata{{Ipv4Addr: vlanenv.PodIP, DeviceNumber: -1}}
}

func (b *branchIpamd) AddNetwork(context.Context, *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) {
	b.mu.Lock()
	b.adds++
	b.mu.Unlock()
	return &rpc.AddNetworkReply{
		Success: true, IpAllocationMetadata: b.meta(),
		PodVlanId: vlanenv.VLAN, PodEniMac: vlanenv.MAC, PodEniSubnetGw: vlanenv.GW, ParentIfIndex: b.trunk,
	}, nil
}

func (b *branchIpamd) DelNetwork(context.Context, *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, error) {
	b.mu.Lock()
	b.dels++
	b.mu.Unlock()
	return &rpc.DelNetworkReply{Success: true, IpAllocationMetadata: b.meta(), PodVlanId: vlanenv.VLAN}, nil
}

func (b *branchIpamd) calls() (adds, dels int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.adds, b.dels
}

// serve starts b on a unix socket until the test ends or stop is called.
func serve(t *testing.T, b *branchIpamd) (socket string, stop func()) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ipamd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rpc.RegisterCNIBackendServer(srv, b)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return sock, srv.Stop
}

// plugin runs aws-cni in the node's namespace as a container runtime does
// and returns its stdout; a CNI error fails the test.
func plugin(t *testing.T, e vlanenv.Env, command, socket, mode string, prev []byte) []byte {
	t.Helper()
	bin := os.Getenv(PluginEnv)
	if bin == "" {
		t.Fatalf("%s is not set: test/vm puts the aws-cni binary in the guest", PluginEnv)
	}
	conf := map[string]any{
		"cniVersion": "1.0.0", "name": "aws-cni", "type": "aws-cni",
		"vethPrefix": "eni", "mtu": "9001", "podSGEnforcingMode": mode,
		"pluginLogFile": "stderr", "pluginLogLevel": "Debug", "ipamdSocket": socket,
	}
	if prev != nil {
		var raw map[string]any
		if err := json.Unmarshal(prev, &raw); err != nil {
			t.Fatal(err)
		}
		conf["prevResult"] = raw
	}
	stdin, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	vlanenv.Do(t, e.Node, func() error {
		cmd := exec.Command(bin)
		cmd.Env = []string{
			"CNI_COMMAND=" + command, "CNI_CONTAINERID=ctr-sg", "CNI_NETNS=" + e.Pod.Path(),
			"CNI_IFNAME=eth0", "CNI_PATH=/bin",
			"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=sg-pod;K8S_POD_INFRA_CONTAINER_ID=ctr-sg",
		}
		cmd.Stdin = bytes.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		t.Logf("aws-cni %s took %s", command, time.Since(start).Round(time.Millisecond))
		if err != nil {
			var cniErr types.Error
			_ = json.Unmarshal(stdout.Bytes(), &cniErr)
			t.Errorf("aws-cni %s (%s mode): %v: %+v\nplugin log:\n%s", command, mode, err, cniErr, stderr.String())
		}
		return nil
	})
	return stdout.Bytes()
}

// TestVMPluginBranchPod drives the aws-cni binary through a branch pod's
// life in both enforcing modes: ADD wires a real 802.1Q link and the pod's
// traffic crosses the trunk tagged, CHECK passes, and DEL, from prevResult
// with ipamd down (strict) or from ipamd's reply (standard), leaves
// nothing once the runtime has removed the pod's namespace, and again when
// repeated.
func TestVMPluginBranchPod(t *testing.T) {
	for _, mode := range []string{"strict", "standard"} {
		t.Run(mode, func(t *testing.T) {
			e := vlanenv.New(t, vlanenv.VLAN)
			if mode == "strict" {
				e.StrictNode(t, false)
			}
			ipamd := &branchIpamd{trunk: int32(e.TrunkIndex)}
			sock, stopIpamd := serve(t, ipamd)
			before := e.State(t)

			out := plugin(t, e, "ADD", sock, mode, nil)
			if t.Failed() {
				return
			}
			res, err := current.NewResultFromResult(mustResult(t, out))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.IPs) != 1 || res.IPs[0].Address.String() != vlanenv.PodIP+"/32" {
				t.Errorf("ADD result IPs = %v, want %s/32", res.IPs, vlanenv.PodIP)
			}
			e.WantRealVLAN(t)
			c := e.Capture(t)
			vlanenv.Connect(t, "pod to VPC", e.Pod, e.VPC, vlanenv.GW)
			vlanenv.Connect(t, "VPC to pod", e.VPC, e.Pod, vlanenv.PodIP)
			vlanenv.WantPodFramesTagged(t, vlanenv.Drain(t, c))
			plugin(t, e, "CHECK", sock, mode, out)

			// Strict: DEL with ipamd down works from prevResult alone.
			// Standard: DEL without prevResult works from ipamd's reply.
			prev := out
			if mode == "standard" {
				prev = nil
			} else {
				stopIpamd()
			}
			plugin(t, e, "DEL", sock, mode, prev)
			e.WantStateBesidesVeth(t, before, hostVeth(mode))
			e.RemovePod(t)
			e.WaitState(t, "after DEL and pod netns removal", before)
			// The runtime may repeat DEL once the namespace is gone.
			plugin(t, e, "DEL", sock, mode, prev)
			e.WaitState(t, "after a second DEL", before)
			if _, dels := ipamd.calls(); mode == "standard" && dels == 0 {
				t.Errorf("standard-mode DEL without prevResult never asked ipamd")
			}
			if adds, _ := ipamd.calls(); adds != 1 {
				t.Errorf("ipamd saw %d ADDs, want 1", adds)
			}
		})
	}
}

// hostVeth is the node end of the pod's veth: the netconf's prefix, or
// "vlan" for strict branch pods, and a hash of the pod's name.
func hostVeth(mode string) string {
	prefix := "eni"
	if mode == "strict" {
		prefix = vethname.BranchPrefix
	}
	return vethname.HostVethName(prefix, "default", "sg-pod", 0)
}

func mustResult(t *testing.T, out []byte) types.Result {
	t.Helper()
	var r current.Result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ADD printed no CNI result: %v: %q", err, out)
	}
	return &r
}
