package ipamd

import (
	"bytes"
	"context"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestInitConcurrentQuestionFailing: Init asks EC2 several things at once.
// When one of them fails, Init's error names which question and EC2's
// cause, the node is not marked ready, no EC2 state changes and none of
// Init's goroutines outlives it; when the failing question is only a help
// (subnet discovery's list), Init completes and the pool works.
func TestInitConcurrentQuestionFailing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		deny  []string
		want  []string // in Init's error; nil: Init succeeds
		delay string   // an action made slow, so the other question fails first
	}{
		{name: "instance type", deny: []string{"DescribeInstanceTypes"}, delay: "DescribeNetworkInterfaces",
			want: []string{"limits of instance type m5.large", "UnauthorizedOperation"}},
		{name: "attached ENIs", deny: []string{"DescribeNetworkInterfaces"}, delay: "DescribeInstanceTypes",
			want: []string{"describing the ENIs of instance", "UnauthorizedOperation"}},
		{name: "both", deny: []string{"DescribeInstanceTypes", "DescribeNetworkInterfaces"},
			want: []string{"UnauthorizedOperation"}},
		{name: "subnet list", deny: []string{"DescribeSubnets"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{noInit: true})
			f := vpcsim.Faults{DenyActions: tc.deny}
			if tc.delay != "" {
				f.Latency = map[string]vpcsim.Duration{tc.delay: vpcsim.Duration(300 * time.Millisecond)}
			}
			if err := h.env.Sim.SetFaults(f); err != nil {
				t.Fatal(err)
			}
			before := h.env.Sim.NetworkInterfaces()
			err := h.n.Init(context.Background())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Init with %v denied: %v, want it to complete", tc.deny, err)
				}
				if err := h.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
					t.Fatal(err)
				}
				h.settle()
				if _, err := h.srv.AddNetwork(context.Background(), addReq("p")); err != nil {
					t.Errorf("ADD after Init without the subnet list: %v", err)
				}
				h.checkConsistent()
				return
			}
			if err == nil {
				t.Fatalf("Init with %v denied succeeded", tc.deny)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Init: %v, want %q named", err, w)
				}
			}
			select {
			case <-h.n.ready.done():
				t.Error("node marked ready after a failed Init")
			default:
			}
			if after := h.env.Sim.NetworkInterfaces(); len(after) != len(before) {
				t.Errorf("a failed Init changed EC2: %d ENIs, %d before", len(after), len(before))
			}
			var stacks bytes.Buffer
			if err := pprof.Lookup("goroutine").WriteTo(&stacks, 2); err != nil {
				t.Fatal(err)
			}
			if s := stacks.String(); strings.Contains(s, "ipamd.(*nodeState).learn.func") || strings.Contains(s, "ipamd.(*IPAM).Init.func") {
				t.Errorf("a goroutine of Init outlived it:\n%s", s)
			}
		})
	}
}
