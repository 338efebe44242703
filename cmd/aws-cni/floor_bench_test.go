package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// BenchmarkPrivilegedPluginVsFloor measures, interleaved in one run, the
// plugin binary's ADD and DEL (exec, CNI library, gRPC to an in-test
// ipamd, kernel wiring) against the kernel floor: a trivial static binary
// doing the same netlink wiring (cmd/vpccni-bench/floor). Each iteration
// wires one pod with each and removes both pods' netns untimed, as a
// runtime does after DEL. It reports p50/p99 of each and the ratios:
//
//	VPC_CNI_PRIVILEGED=1 go test -run '^$' -bench PluginVsFloor -benchtime 200x ./cmd/aws-cni
func BenchmarkPrivilegedPluginVsFloor(b *testing.B) {
	testutil.Privileged(b)
	floor := filepath.Join(filepath.Dir(pluginBin), "floor")
	build := exec.Command("go", "build", "-o", floor, "../vpccni-bench/floor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build floor: %v\n%s", err, out)
	}
	n := newNode(b, "192.168.0.10")
	allocs := make([]allocation, b.N)
	for i := range allocs {
		allocs[i] = allocation{ip: fmt.Sprintf("10.%d.%d.%d", 10+i/65536, i/256%256, i%256), routeTable: 254}
	}
	ipamd := startFakeIpamd(b, allocs...)
	var addP, delP, addF, delF []time.Duration
	b.ResetTimer()
	for i := range b.N {
		podNS, floorNS := testutil.NewNS(b), testutil.NewNS(b)
		c := call{command: "ADD", containerID: fmt.Sprintf("ctr-%d", i), netns: podNS.Path(), ifName: "eth0",
			podName: fmt.Sprintf("p%d", i), podNS: "bench", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
		start := time.Now()
		out := n.run(b, c)
		addP = append(addP, time.Since(start))
		out.mustSucceed(b, "ADD")

		fenv := []string{"CNI_NETNS=" + floorNS.Path(), "CNI_IFNAME=eth0", "FLOOR_IP=" + fmt.Sprintf("10.200.%d.%d", i/256%256, i%256),
			"FLOOR_VETH=" + vethname.HostVethName("eni", "floor", fmt.Sprint(i), 0), "FLOOR_TABLE=254",
			fmt.Sprintf("CNI_CONTAINERID=floor-%d", i)}
		addF = append(addF, n.execFloor(b, floor, append(fenv, "CNI_COMMAND=ADD")))

		c.command, c.conf = "DEL", netconf("1.0.0", out.stdout, nil)
		start = time.Now()
		n.run(b, c).mustSucceed(b, "DEL")
		delP = append(delP, time.Since(start))
		delF = append(delF, n.execFloor(b, floor, append(fenv, "CNI_COMMAND=DEL")))

		b.StopTimer()
		for _, s := range []ns.NetNS{podNS, floorNS} {
			path := s.Path()
			_ = s.Close()
			_ = unix.Unmount(path, unix.MNT_DETACH)
			_ = os.Remove(path)
		}
		b.StartTimer()
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for _, s := range []struct {
		name string
		v    []time.Duration
	}{{"add", addP}, {"del", delP}, {"floor-add", addF}, {"floor-del", delF}} {
		b.ReportMetric(ms(pct(s.v, 50)), s.name+"-p50-ms")
		b.ReportMetric(ms(pct(s.v, 99)), s.name+"-p99-ms")
	}
	b.ReportMetric(float64(pct(addP, 50))/float64(pct(addF, 50)), "add-p50/floor")
	b.ReportMetric(float64(pct(addP, 99))/float64(pct(addF, 99)), "add-p99/floor")
	b.ReportMetric(float64(pct(delP, 50))/float64(pct(addP, 50)), "del-p50/add-p50")
}

// execFloor runs the floor binary in the node's namespace and returns its
// wall time.
func (n node) execFloor(tb testing.TB, bin string, env []string) time.Duration {
	tb.Helper()
	var d time.Duration
	err := n.ns.Do(func(ns.NetNS) error {
		cmd := exec.Command(bin)
		cmd.Env = env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d = time.Since(start)
		if err != nil {
			return fmt.Errorf("floor %v: %w: %s", env, err, out)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// pct is the nearest-rank percentile p of v.
func pct(v []time.Duration, p int) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}
