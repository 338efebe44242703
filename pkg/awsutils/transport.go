package awsutils

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// inMemoryBodies hands net/http every request body as a *bytes.Reader.
//
// The SDK wraps bodies in a reader net/http does not know to be in memory,
// so the transport writes headers and body separately and then probes the
// body for bytes past Content-Length. If a fast server's answer arrives
// first, the SDK closes the body, the probe sees an error, and net/http
// closes the connection under the answer still being read ("use of closed
// network connection", docs/compatibility.md, "vpcsim: fidelity to EC2").
// With an in-memory body net/http sends headers and body in one write after
// its own probe, so no answer can arrive before the write is finished.
type inMemoryBodies struct{ next aws.HTTPClient }

// EC2 Query requests are small form bodies; anything larger is a bug.
const maxRequestBody = 8 << 20

func (c inMemoryBodies) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	_ = r.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the %s request body: %w", r.URL.Path, err)
	}
	if len(data) > maxRequestBody {
		return nil, fmt.Errorf("request body to %s over %d bytes", r.URL.Host, maxRequestBody)
	}
	r = r.Clone(r.Context())
	r.ContentLength = int64(len(data))
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return c.next.Do(r)
}

// InMemoryBodies wraps next so that request bodies reach net/http in
// memory (see inMemoryBodies), for SDK clients built outside this package.
func InMemoryBodies(next aws.HTTPClient) aws.HTTPClient { return inMemoryBodies{next: next} }
