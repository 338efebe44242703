package podnet

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// BenchmarkPrivilegedSetupMark measures what marking the host veth with
// its sandbox (SandboxMark) adds to ADD's wiring: Setup of a pod without
// a sandbox (no alias request) and with one, interleaved and alternating
// which goes first, and the alias request alone on a pod's host veth.
// Making and removing the pods' namespaces is not timed:
//
//	VPC_CNI_PRIVILEGED=1 go test -run '^$' -bench SetupMark -benchtime 300x ./pkg/podnet
func BenchmarkPrivilegedSetupMark(b *testing.B) {
	var alias []time.Duration
	plain, marked := benchSetupPairs(b,
		func(i int, withMark bool, pod *Pod) {
			if withMark {
				pod.Sandbox = fmt.Sprintf("%064x", i)
			}
		},
		func(pod Pod) error {
			link, err := netlink.LinkByName(pod.Interfaces[0].HostVeth)
			if err != nil {
				return err
			}
			start := time.Now()
			err = netlink.LinkSetAlias(link, SandboxMark(pod.Sandbox+"x"))
			alias = append(alias, time.Since(start))
			return err
		})
	reportP50s(b, samples{"unmarked-setup", plain}, samples{"marked-setup", marked}, samples{"alias", alias})
}

// benchSetupPairs times Setup of b.N pairs of pods, one without and one
// with what the benchmark compares, interleaved and alternating which goes
// first. kind gives round i's pod what its kind has; after runs in the
// node's namespace after the timed Setup of a pod with it, before its
// Teardown. Making and removing the pods' namespaces is not timed.
func benchSetupPairs(b *testing.B, kind func(i int, with bool, pod *Pod), after func(Pod) error) (without, with []time.Duration) {
	b.Helper()
	testutil.Privileged(b)
	ctx := context.Background()
	node := testutil.NewNS(b)
	b.ResetTimer()
	for i := range b.N {
		for j := range 2 {
			withIt := (i+j)%2 == 1
			b.StopTimer()
			podNS := testutil.NewNS(b)
			pod := Pod{NetNS: podNS.Path(), MTU: 9001, Interfaces: []Interface{iface("bench", fmt.Sprintf("p%d-%d", i, j), fmt.Sprintf("10.%d.%d.%d", 10+j, i/256%256, i%256), 0, 254)}}
			kind(i, withIt, &pod)
			b.StartTimer()
			err := node.Do(func(ns.NetNS) error {
				start := time.Now()
				if err := Setup(ctx, pod); err != nil {
					return err
				}
				d := time.Since(start)
				if !withIt {
					without = append(without, d)
					return Teardown(ctx, pod)
				}
				with = append(with, d)
				if err := after(pod); err != nil {
					return err
				}
				return Teardown(ctx, pod)
			})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			dropBenchNS(b, podNS)
			b.StartTimer()
		}
	}
	b.StopTimer()
	return without, with
}

// samples is one named set of a benchmark's timings.
type samples struct {
	name string
	v    []time.Duration
}

// reportP50s reports each set's median, in milliseconds, as a metric.
func reportP50s(b *testing.B, sets ...samples) {
	b.Helper()
	for _, s := range sets {
		p50, err := bench.Percentile(s.v, 50)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(p50.Nanoseconds())/1e6, s.name+"-p50-ms")
	}
}

// dropBenchNS closes and removes a benchmark pod's namespace (outside the
// timing: the caller has stopped the timer).
func dropBenchNS(b *testing.B, podNS ns.NetNS) {
	b.Helper()
	path := podNS.Path()
	_ = podNS.Close()
	if err := podnettest.RemoveNS(path); err != nil {
		b.Fatal(err)
	}
}
