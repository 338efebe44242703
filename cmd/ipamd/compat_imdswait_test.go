package main

import (
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestProcessIMDSWaitTimedAsUpstream: upstream times its wait for
// instance metadata to list each new ENI in
// awscni_aws_api_latency_ms{api="waitForENIAndIPsAttached"}, error="false"
// and status "200" when it did, error="true" and an empty status when it
// gave up (docs/compatibility.md, "Metrics"). ipamd attaches a spare ENI at
// start (WARM_IP_TARGET=15, more than the primary ENI holds) and watches instance metadata for it.
func TestProcessIMDSWaitTimedAsUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	for _, c := range []struct {
		name          string
		lag           time.Duration // beyond the daemon's 2 s IMDS wait: it gives up
		failed, state string
	}{
		{"listed", 0, "false", "200"},
		{"lagging", 10 * time.Second, "true", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := simtest.Start(t, simtest.Basic())
			if err := env.Sim.SetFaults(vpcsim.Faults{IMDSLag: vpcsim.Duration(c.lag)}); err != nil {
				t.Fatal(err)
			}
			d, metricsAt := startScraped(t, env, "WARM_IP_TARGET=15")
			want := `awscni_aws_api_latency_ms_count{api="waitForENIAndIPsAttached",error="` + c.failed + `",status="` + c.state + `"}`
			waitScrape(t, metricsAt, want, func(s scrape) bool { return s.samples[want] >= 1 })
			if err := d.stop(); err != nil {
				t.Fatalf("SIGTERM: %v", err)
			}
		})
	}
}
