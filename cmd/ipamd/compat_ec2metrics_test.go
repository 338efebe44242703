package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestProcessEC2MetricsAsUpstream runs ipamd against vpcsim and reads
// the EC2 series as a dashboard built for upstream does
// (docs/compatibility.md, "Metrics"): awscni_aws_api_latency_ms carries
// "200" or EC2's error code in status; awscni_ec2api_req_count,
// awscni_ec2api_error_count and awscni_aws_api_* count each call once, as
// the caller saw it, however many HTTP attempts the SDK's retries made
// (ours, vpccni_ec2_calls_total, counts the attempts); instance-metadata
// reads are timed as api="GetMetadata".
func TestProcessEC2MetricsAsUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	env := simtest.Start(t, simtest.Basic())
	d, metricsAt := startScraped(t, env, "WARM_IP_TARGET=1", "IP_COOLDOWN_PERIOD=0", "INTROSPECTION_BIND_ADDRESS=127.0.0.1:0")
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
		return waitScrape(t, metricsAt, what, ok)
	}
	const assign = "AssignPrivateIpAddresses"
	latency := func(s scrape, failed, status string) float64 {
		return s.samples[fmt.Sprintf(`awscni_aws_api_latency_ms_count{api=%q,error=%q,status=%q}`, assign, failed, status)]
	}

	// A granted call: status "200".
	if _, err := add(ctx, "p0"); err != nil {
		t.Fatalf("ADD p0: %v", err)
	}
	s := waitScrape("a granted AssignPrivateIpAddresses", func(s scrape) bool { return latency(s, "false", "200") >= 1 })
	// Upstream times every instance-metadata read as api="GetMetadata".
	if got := s.samples[`awscni_aws_api_latency_ms_count{api="GetMetadata",error="false",status="200"}`]; got < 1 {
		t.Errorf("awscni_aws_api_latency_ms{api=\"GetMetadata\"} counts %v reads after start-up, want some", got)
	}

	// A call throttled once, then granted on the SDK's retry: one call,
	// no error, under upstream's names.
	if err := env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: assign, Code: "RequestLimitExceeded", Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := add(ctx, "p1"); err != nil {
		t.Fatalf("ADD p1: %v", err)
	}
	s = waitScrape("the throttled AssignPrivateIpAddresses retried and granted", func(s scrape) bool {
		return s.samples[fmt.Sprintf(`vpccni_ec2_throttles_total{action=%q}`, assign)] == 1 &&
			s.samples[fmt.Sprintf(`vpccni_ec2_calls_total{action=%q,code=""}`, assign)] == s.samples[fmt.Sprintf(`awscni_ec2api_req_count{fn=%q}`, assign)]-
				s.samples[fmt.Sprintf(`awscni_ec2api_error_count{fn=%q}`, assign)]
	})
	granted := s.samples[fmt.Sprintf(`vpccni_ec2_calls_total{action=%q,code=""}`, assign)]
	if got := s.samples[fmt.Sprintf(`awscni_ec2api_req_count{fn=%q}`, assign)]; got != granted {
		t.Errorf("awscni_ec2api_req_count{fn=%q} %v after %v granted calls and one throttled attempt retried, want %v (one per call)", assign, got, granted, granted)
	}
	for _, k := range []string{fmt.Sprintf(`awscni_ec2api_error_count{fn=%q}`, assign),
		fmt.Sprintf(`awscni_aws_api_error_count{api=%q,error="RequestLimitExceeded"}`, assign),
		fmt.Sprintf(`awscni_aws_api_latency_ms_count{api=%q,error="true",status="RequestLimitExceeded"}`, assign)} {
		if got := s.samples[k]; got != 0 {
			t.Errorf("%s = %v for a call that succeeded on its retry, want 0", k, got)
		}
	}

	// A refused call: status is EC2's error code, as upstream labels it.
	if err := env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{assign, "CreateNetworkInterface"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, _ = add(actx, fmt.Sprint("q", i)) // served or not: the pool must have asked EC2
		cancel()
	}
	s = waitScrape("the refused AssignPrivateIpAddresses", func(s scrape) bool {
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

// TestProcessReconcileErrorsAsUpstream: a reconcile whose EC2 read fails
// counts no awscni_ipamd_error_count, as upstream logs and retries it;
// only steps upstream names (a metadata read, an ENI or address it could
// not adopt or drop) count, under upstream's fn values.
func TestProcessReconcileErrorsAsUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	env := simtest.Start(t, simtest.Basic())
	d, metricsAt := startScraped(t, env)
	if _, err := d.logAttr("node initialised", "instance", workingWait); err != nil {
		t.Fatal(err)
	}
	// Another actor takes an address from the node's primary ENI:
	// instance metadata then disagrees with ipamd, whose reconcile asks
	// EC2, which refuses.
	ctx := context.Background()
	other, err := awsutils.NewEC2(ctx, awsutils.Config{
		Region: env.Sim.Region(), EC2Endpoint: env.EC2URL,
		Credentials: &awsutils.StaticCredentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		Limits:      awsutils.RateLimits{Disabled: true},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The pool fills after start-up: wait for an address to take.
	var primary string
	var taken []netip.Addr
	if err := poll.Until(ctx, workingWait, func() error {
		for _, e := range env.Sim.NetworkInterfaces() {
			if e.Attachment != nil && e.Attachment.InstanceID == simtest.InstanceID && e.Attachment.DeviceIndex == 0 && len(e.SecondaryIPs) > 0 {
				primary, taken = e.ID, e.SecondaryIPs[:1]
				return nil
			}
		}
		return errors.New("no secondary address on the primary ENI")
	}); err != nil {
		t.Fatalf("ipamd never gave its primary ENI a secondary address: %v", err)
	}
	if err := env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{"DescribeNetworkInterfaces"}}); err != nil {
		t.Fatal(err)
	}
	if err := other.UnassignIPv4(ctx, primary, taken); err != nil {
		t.Fatalf("taking %v from %s: %v", taken, primary, err)
	}
	s := waitScrape(t, metricsAt, "two refused reconcile reads", func(s scrape) bool {
		return s.samples[`awscni_ec2api_error_count{fn="DescribeNetworkInterfaces"}`] >= 2
	})
	for k, v := range s.samples {
		if strings.HasPrefix(k, "awscni_ipamd_error_count{") && v > 0 {
			t.Errorf("%s = %v after reconciles whose EC2 read failed; upstream counts none", k, v)
		}
	}
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}

// TestProcessAWSUtilsErrorsAsUpstream: an ENI ipamd fails to clean up
// counts in awscni_aws_utils_error_count under upstream's fn, with EC2's
// error code as error.
func TestProcessAWSUtilsErrorsAsUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	env := simtest.Start(t, simtest.Basic())
	// An unattached ENI this instance created before a crash: ipamd
	// deletes it at start, and EC2 refuses.
	ctx := context.Background()
	other, err := awsutils.NewEC2(ctx, awsutils.Config{
		Region: env.Sim.Region(), EC2Endpoint: env.EC2URL,
		Credentials: &awsutils.StaticCredentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		Limits:      awsutils.RateLimits{Disabled: true},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: simtest.InstanceID, SubnetID: simtest.NodeSubnetID,
		SecurityGroups: []string{simtest.SecurityGroupID}}); err != nil {
		t.Fatal(err)
	}
	if err := env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{"DeleteNetworkInterface"}}); err != nil {
		t.Fatal(err)
	}
	d, metricsAt := startScraped(t, env)
	const want = `awscni_aws_utils_error_count{error="UnauthorizedOperation",fn="cleanUpLeakedENIDeleteErr"}`
	waitUtilsError(t, metricsAt, want, "the refused delete")
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}

// TestProcessENIUndoErrorsAsUpstream: a new ENI EC2 will not attach, and
// will not delete either, counts in awscni_aws_utils_error_count as
// upstream's AllocENIDeleteErr, labelled with the attach's error code.
func TestProcessENIUndoErrorsAsUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	env := simtest.Start(t, simtest.Basic())
	if err := env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{"AttachNetworkInterface", "DeleteNetworkInterface"}}); err != nil {
		t.Fatal(err)
	}
	// More addresses than the primary ENI holds: ipamd needs a new ENI.
	d, metricsAt := startScraped(t, env, "MINIMUM_IP_TARGET=15")
	const want = `awscni_aws_utils_error_count{error="UnauthorizedOperation",fn="AllocENIDeleteErr"}`
	waitUtilsError(t, metricsAt, want, "the refused attach and delete")
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}
