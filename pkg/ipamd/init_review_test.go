package ipamd

import (
	"bytes"
	"context"
	"errors"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestInitConcurrentQuestionFailing: Init asks EC2 several things at once.
// When one of them fails, Init's error names which question and EC2's
// cause, the node is not marked ready, no EC2 state changes and none of
// Init's goroutines outlives it; when the failing question is only a help
// (subnet discovery's list), Init completes and the pool works.
func TestInitConcurrentQuestionFailing(t *testing.T) {
	const slowQuestion = time.Second
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
				f.Latency = map[string]vpcsim.Duration{tc.delay: vpcsim.Duration(slowQuestion)}
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
			// A goroutine Init waited for may still be leaving (it closed
			// its channel, its frame not yet gone): wait for it, though
			// well short of the slow question, which one that outlived
			// Init would still be asking.
			var stacks string
			err = testutil.Eventually(context.Background(), slowQuestion/2, func() error {
				var b bytes.Buffer
				if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
					return err
				}
				stacks = b.String()
				if strings.Contains(stacks, "ipamd.(*nodeState).learn.func") || strings.Contains(stacks, "ipamd.(*IPAM).Init.func") {
					return errors.New("a goroutine of Init is still running")
				}
				return nil
			})
			if err != nil {
				t.Errorf("a goroutine of Init outlived it:\n%s", stacks)
			}
		})
	}
}
