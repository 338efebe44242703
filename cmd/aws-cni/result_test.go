package main

import (
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamclient"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

func TestBuildResultEncodingAndReadBack(t *testing.T) {
	k := k8sArgs{PodName: "sample-pod", PodNamespace: "default"}
	meta := []*ipamclient.IPAllocationMetadata{
		{Ipv4Addr: "10.0.0.5", DeviceNumber: 2, RouteTableId: 3},
		{Ipv4Addr: "10.9.0.5", DeviceNumber: 0, RouteTableId: 10100},
	}
	ifs, err := podInterfaces(meta, "eni", "eth0", k)
	if err != nil {
		t.Fatal(err)
	}
	res := buildResult("/var/run/netns/p", ifs, nil, "dummycc21c2d7785", 0, 2)
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	// The exact layout upstream's DEL reads back without ipamd: route
	// tables in the container interfaces' Mac, the dummy interface last.
	const want = `{"cniVersion":"1.1.0","interfaces":[` +
		`{"name":"enicc21c2d7785"},{"mac":"3","name":"eth0","sandbox":"/var/run/netns/p"},` +
		`{"name":"enia0b7655f3c9"},{"mac":"10100","name":"mNicIf1","sandbox":"/var/run/netns/p"},` +
		`{"mac":"0","name":"dummycc21c2d7785","sandbox":"2"}],` +
		`"ips":[{"address":"10.0.0.5/32","interface":1},{"address":"10.9.0.5/32","interface":3}]}`
	if got := string(raw); got != want {
		t.Errorf("result\n got %s\nwant %s", got, want)
	}

	w, err := fromPrevResult(res, "/var/run/netns/p", "eth0", k)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ifs, w.Pod.Interfaces, cmp.Comparer(func(a, b *net.IPNet) bool { return a.String() == b.String() })); d != "" {
		t.Errorf("read back interfaces differ (-built +read):\n%s", d)
	}
}

func TestFromPrevResultUpstreamShapes(t *testing.T) {
	k := k8sArgs{PodNamespace: "default", PodName: "a"}
	eni, vlan := vethname.HostVethName("eni", "default", "a", 0), vethname.HostVethName(vethname.BranchPrefix, "default", "a", 0)
	idx := func(i int) *int { return &i }
	addr := func(s string) net.IPNet { _, n, _ := net.ParseCIDR(s); return *n }
	for _, c := range []struct {
		name      string
		res       *current.Result
		wantVLAN  int
		wantTable int
		wantErr   string
	}{
		{
			// Results of upstream ≤1.19 have no route table in the Mac: the
			// table comes from the dummy's device number (device 2 → 3).
			name: "pre-1.20 result",
			res: &current.Result{Interfaces: []*current.Interface{
				{Name: eni}, {Name: "eth0", Sandbox: "/ns"}, {Name: "dummya", Mac: "0", Sandbox: "2"},
			}, IPs: []*current.IPConfig{{Interface: idx(1), Address: addr("10.0.0.5/32")}}},
			wantTable: 3,
		},
		{
			name: "branch pod",
			res: &current.Result{Interfaces: []*current.Interface{
				{Name: vlan}, {Name: "eth0", Sandbox: "/ns", Mac: "0"}, {Name: "dummya", Mac: "7"},
			}, IPs: []*current.IPConfig{{Interface: idx(1), Address: addr("10.2.0.55/32"), Gateway: net.ParseIP("10.2.0.1")}}},
			wantVLAN: 7, wantTable: hostcontract.MainTable,
		},
		{
			name: "chained plugin appended interfaces after the dummy",
			res: &current.Result{Interfaces: []*current.Interface{
				{Name: eni}, {Name: "eth0", Sandbox: "/ns", Mac: "254"}, {Name: "dummya", Mac: "0", Sandbox: "0"},
				{Name: "vethegress"}, {Name: "v6if0", Sandbox: "/ns"},
			}, IPs: []*current.IPConfig{{Interface: idx(1), Address: addr("10.0.0.5/32")}, {Interface: idx(4), Address: addr("fd00::ac:2/128")}}},
			wantTable: hostcontract.MainTable,
		},
		{name: "no dummy", res: &current.Result{}, wantErr: "no dummy"},
		{name: "dummy Mac not a number", res: &current.Result{Interfaces: []*current.Interface{{Name: "dummya", Mac: "02:00:00:00:00:01"}}}, wantErr: "not a VLAN id"},
		{name: "no container interface", res: &current.Result{Interfaces: []*current.Interface{{Name: "dummya", Mac: "0", Sandbox: "0"}}}, wantErr: "no interface eth0"},
		{
			// A runtime that mixed its cached results up: another pod's.
			name: "another pod's host veth",
			res: &current.Result{Interfaces: []*current.Interface{
				{Name: vethname.HostVethName("eni", "default", "b", 0)}, {Name: "eth0", Sandbox: "/ns", Mac: "254"}, {Name: "dummyb", Mac: "0", Sandbox: "0"},
			}, IPs: []*current.IPConfig{{Interface: idx(1), Address: addr("10.0.0.6/32")}}},
			wantErr: "is not pod default/a's",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, err := fromPrevResult(c.res, "/ns", "eth0", k)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w.VLANID != c.wantVLAN || len(w.Pod.Interfaces) != 1 || podnet.HostTable(w.Pod.Interfaces[0].RouteTable) != c.wantTable {
				t.Errorf("read %+v, want VLAN %d, one interface with table %d", w, c.wantVLAN, c.wantTable)
			}
		})
	}
}

func TestPlanAddBranch(t *testing.T) {
	conf := &config{Name: "aws-cni", VethPrefix: "eni", MTU: 9001, StrictSG: true}
	reply := &ipamclient.AddNetworkReply{
		Success:              true,
		IpAllocationMetadata: []*ipamclient.IPAllocationMetadata{{Ipv4Addr: "10.2.0.55", DeviceNumber: -1}},
		PodVlanId:            7, PodEniMac: "02:42:0a:02:00:37", PodEniSubnetGw: "10.2.0.1", ParentIfIndex: 4,
	}
	args := skelArgs("/ns")
	plan, err := planAdd(conf, args, k8sArgs{PodName: "p", PodNamespace: "default"}, reply)
	if err != nil {
		t.Fatal(err)
	}
	if plan.branch == nil || !strings.HasPrefix(plan.branch.Pod.Interfaces[0].HostVeth, "vlan") || plan.branch.ParentIfIndex != 4 {
		t.Errorf("strict branch plan = %+v", plan.branch)
	}
	last := plan.result.Interfaces[len(plan.result.Interfaces)-1]
	if last.Mac != "7" || last.Sandbox != "" || !plan.result.IPs[0].Gateway.Equal(net.ParseIP("10.2.0.1")) {
		t.Errorf("branch result dummy %+v gateway %v", last, plan.result.IPs[0].Gateway)
	}

	conf.StrictSG = false
	if plan, _ := planAdd(conf, args, k8sArgs{PodName: "p", PodNamespace: "default"}, reply); !strings.HasPrefix(plan.branch.Pod.Interfaces[0].HostVeth, "eni") {
		t.Errorf("standard mode host veth %q, want the eni prefix", plan.branch.Pod.Interfaces[0].HostVeth)
	}
	for name, mutate := range map[string]func(*ipamclient.AddNetworkReply){
		"bad MAC":     func(r *ipamclient.AddNetworkReply) { r.PodEniMac = "nope" },
		"no gateway":  func(r *ipamclient.AddNetworkReply) { r.PodEniSubnetGw = "" },
		"bad address": func(r *ipamclient.AddNetworkReply) { r.IpAllocationMetadata[0].Ipv4Addr = "10.2.0" },
		"no address":  func(r *ipamclient.AddNetworkReply) { r.IpAllocationMetadata = nil },
	} {
		r := &ipamclient.AddNetworkReply{
			Success:              true,
			IpAllocationMetadata: []*ipamclient.IPAllocationMetadata{{Ipv4Addr: "10.2.0.55"}},
			PodVlanId:            7, PodEniMac: "02:42:0a:02:00:37", PodEniSubnetGw: "10.2.0.1", ParentIfIndex: 4,
		}
		mutate(r)
		if _, err := planAdd(conf, args, k8sArgs{}, r); err == nil {
			t.Errorf("%s: planAdd accepted the reply", name)
		}
	}
}

func skelArgs(netns string) *entry.Args {
	return &entry.Args{ContainerID: "c1", Netns: netns, IfName: "eth0"}
}

func TestRollbackKeepsCauseAndAddsCleanupFailure(t *testing.T) {
	cause := types.NewError(ErrWiring, "wire pod network", "boom")
	var ce *types.Error
	if err := (&invocation{}).withCleanup(cause, errors.New("release failed")); !errors.As(err, &ce) ||
		ce.Code != ErrWiring || !strings.Contains(ce.Details, "boom") || !strings.Contains(ce.Details, "release failed") {
		t.Errorf("combined error = %#v", err)
	}
}
