package awsutils

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// Our adapter survives large answers from a server that answers at once (no
// vpcsim delay) with no retries to hide a failure: the in-memory request
// body leaves no window for the SDK's race (transport.go).
func TestLargeAnswersWithoutServerDelayOrRetries(t *testing.T) {
	env := simtest.Start(t, simtest.Basic(), vpcsim.WithLargeResponseDelay(0))
	e := newTestEC2(t, env, func(c *Config) { c.Retry.MaxAttempts = 1 })
	n := 200
	if testing.Short() {
		n = 50
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range n {
		out, err := e.api.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{})
		if err != nil {
			t.Fatalf("call %d of %d: %v", i+1, n, err)
		}
		if len(out.InstanceTypes) < 20 {
			t.Fatalf("call %d: %d instance types, want a large answer", i+1, len(out.InstanceTypes))
		}
	}
}

type recordBody struct {
	body    string
	inMem   bool
	getBody bool
}

func (r *recordBody) Do(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	r.body = string(b)
	_, r.inMem = req.Body.(interface {
		WriteTo(io.Writer) (int64, error)
	})
	r.getBody = req.GetBody != nil
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

func TestInMemoryBodies(t *testing.T) {
	next := &recordBody{}
	c := inMemoryBodies{next: next}
	req, _ := http.NewRequest(http.MethodPost, "http://ec2.test/", io.NopCloser(strings.NewReader("Action=DescribeVpcs")))
	req.ContentLength = int64(len("Action=DescribeVpcs"))
	if _, err := c.Do(req); err != nil {
		t.Fatal(err)
	}
	if next.body != "Action=DescribeVpcs" || !next.inMem || !next.getBody {
		t.Fatalf("forwarded body %q (in memory %v, GetBody %v), want the same bytes in memory", next.body, next.inMem, next.getBody)
	}

	big := strings.NewReader(strings.Repeat("x", maxRequestBody+1))
	req, _ = http.NewRequest(http.MethodPost, "http://ec2.test/", io.NopCloser(big))
	if _, err := c.Do(req); err == nil || !strings.Contains(err.Error(), "ec2.test") {
		t.Fatalf("oversized body: err %v, want one naming the endpoint", err)
	}
}
