package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestProcessEC2MetricsAsUpstream runs ipamd against vpcsim and reads
// the EC2 series as a dashboard built for upstream does
// (docs/compatibility.md, "Metrics"): awscni_aws_api_latency_ms carries
// "200" or EC2's error code in status.
func TestProcessEC2MetricsAsUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	env := simtest.Start(t, simtest.Basic())
	d := simDaemon(t, env, "WARM_IP_TARGET=1", "IP_COOLDOWN_PERIOD=0",
		"VPC_CNI_METRICS_ADDR=127.0.0.1:0", "INTROSPECTION_BIND_ADDRESS=127.0.0.1:0")
	d.start()
	metricsAt, err := d.logAttr("serving metrics", "addr", workingWait)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.logAttr("node initialised", "instance", workingWait); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+filepath.Join(d.dir, "ipamd.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	add, _ := podCalls(rpc.NewCNIBackendClient(conn), "default")
	ctx := context.Background()
	waitScrape := func(what string, ok func(scrape) bool) scrape {
		t.Helper()
		var s scrape
		for deadline := time.Now().Add(workingWait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if s, err = scrapeMetrics(metricsAt); err == nil && ok(s) {
				return s
			}
		}
		t.Fatalf("/metrics never showed %s (last error %v); samples:\n%v", what, err, s.samples)
		return s
	}
	const assign = "AssignPrivateIpAddresses"
	latency := func(s scrape, failed, status string) float64 {
		return s.samples[fmt.Sprintf(`awscni_aws_api_latency_ms_count{api=%q,error=%q,status=%q}`, assign, failed, status)]
	}

	// A granted call: status "200".
	if _, err := add(ctx, "p0"); err != nil {
		t.Fatalf("ADD p0: %v", err)
	}
	waitScrape("a granted AssignPrivateIpAddresses", func(s scrape) bool { return latency(s, "false", "200") >= 1 })

	// A refused call: status is EC2's error code, as upstream labels it.
	if err := env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{assign, "CreateNetworkInterface"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, _ = add(actx, fmt.Sprint("q", i)) // served or not: the pool must have asked EC2
		cancel()
	}
	s := waitScrape("the refused AssignPrivateIpAddresses", func(s scrape) bool {
		return s.samples[fmt.Sprintf(`awscni_ec2api_error_count{fn=%q}`, assign)] >= 1
	})
	if got := latency(s, "true", "UnauthorizedOperation"); got < 1 {
		var series []string
		for k := range s.samples {
			if strings.HasPrefix(k, "awscni_aws_api_latency_ms_count{api=\""+assign) {
				series = append(series, k)
			}
		}
		t.Errorf("no refused %s in awscni_aws_api_latency_ms with status=\"UnauthorizedOperation\"; series: %v", assign, series)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}
