package vpcsim_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// describeTypesNTimes makes n unfiltered DescribeInstanceTypes calls, each
// answer far over the 3 KiB threshold, and fails on the first error.
func describeTypesNTimes(t *testing.T, c *ec2.Client, n int) {
	t.Helper()
	for i := range n {
		out, err := c.DescribeInstanceTypes(ctx(t), &ec2.DescribeInstanceTypesInput{})
		if err != nil {
			t.Fatalf("call %d of %d: %v", i+1, n, err)
		}
		if len(out.InstanceTypes) < 20 {
			t.Fatalf("call %d: %d instance types, want a large page", i+1, len(out.InstanceTypes))
		}
	}
}

// Without the delay the unmodified client fails within ~40 calls; 200 keep
// the suite quick (1000 in a row were checked by hand for both tests).
func largeCalls() int {
	if testing.Short() {
		return 50
	}
	return 200
}

// The unmodified SDK client, configured as an unmodified agent configures
// it (the SDK's standard retryer, which counts "use of closed network
// connection" as retryable), survives many large answers in a row with the
// default delay. The delay alone only narrows the window (see
// DefaultLargeResponseDelay): at load 30 a client without retries still
// failed now and then.
func TestLargeAnswersSurviveTheSDK(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := ec2.New(ec2.Options{
		Region:       "us-west-2",
		BaseEndpoint: aws.String(env.EC2URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      retry.NewStandard(),
	})
	describeTypesNTimes(t, c, largeCalls())
}

// The cause is on the client side: a client that hands net/http in-memory
// request bodies (conformance.NewEC2, through awsutils.InMemoryBodies, as
// our agent does) needs no delay and no retry at all.
func TestLargeAnswersNeedNoDelayForBufferingClient(t *testing.T) {
	env := simtest.Start(t, simtest.Basic(), vpcsim.WithLargeResponseDelay(0))
	start := time.Now()
	describeTypesNTimes(t, newEC2(env.EC2URL), largeCalls())
	t.Logf("%d large answers without delay in %v", largeCalls(), time.Since(start))
}
