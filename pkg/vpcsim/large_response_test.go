package vpcsim_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
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

// The cause is on the client side: a client that hands net/http an
// in-memory request body needs no delay at all.
func TestLargeAnswersNeedNoDelayForBufferingClient(t *testing.T) {
	env := simtest.Start(t, simtest.Basic(), vpcsim.WithLargeResponseDelay(0))
	c := ec2.New(ec2.Options{
		Region:       "us-west-2",
		BaseEndpoint: aws.String(env.EC2URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Transport: bufferBodies{awshttp.NewBuildableClient().GetTransport()}},
	})
	start := time.Now()
	describeTypesNTimes(t, c, largeCalls())
	t.Logf("%d large answers without delay in %v", largeCalls(), time.Since(start))
}

// bufferBodies reads each request body into memory, so net/http writes the
// headers and the body in one flush and never races the SDK's Close.
type bufferBodies struct{ next http.RoundTripper }

func (b bufferBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.ContentLength > 0 {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(data))
	}
	return b.next.RoundTrip(r)
}
