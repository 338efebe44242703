package main

import (
	"fmt"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// BenchmarkPrivilegedAddDel measures one ADD plus one DEL of the plugin
// binary as a runtime runs them: process start, the gRPC round trip to an
// in-test ipamd and the kernel wiring. Creating the pod netns is not timed.
func BenchmarkPrivilegedAddDel(b *testing.B) {
	n := newNode(b, "192.168.0.10")
	allocs := make([]allocation, b.N)
	for i := range allocs {
		allocs[i] = allocation{ip: fmt.Sprintf("10.%d.%d.%d", 10+i/65536, i/256%256, i%256), routeTable: 254}
	}
	ipamd := startFakeIpamd(b, allocs...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		podNS := testutil.NewNS(b)
		c := call{command: "ADD", containerID: fmt.Sprintf("ctr-%d", i), netns: podNS.Path(), ifName: "eth0",
			podName: fmt.Sprintf("p%d", i), podNS: "bench", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
		b.StartTimer()
		out := n.run(b, c)
		out.mustSucceed(b, "ADD")
		c.command, c.conf = "DEL", netconf("1.0.0", out.stdout, nil)
		n.run(b, c).mustSucceed(b, "DEL")
	}
}
