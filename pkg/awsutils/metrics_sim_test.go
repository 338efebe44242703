package awsutils

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/metrics"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// scraped is one read of a metrics page: every sample by its exposition
// key (`name{label="v",...}`, labels as the text format sorts them).
type scraped map[string]float64

// has reports whether any sample of family carries label="value".
func (s scraped) has(family, label, value string) bool {
	want := label + "=" + strconv.Quote(value)
	for k := range s {
		name, labels, _ := strings.Cut(k, "{")
		if name == family && strings.Contains(","+labels, ","+want) {
			return true
		}
	}
	return false
}

// meteredEC2 is an EC2 adapter against env reporting to ipamd's metrics,
// served on a free port as ipamd serves them; scrape reads that page.
func meteredEC2(t *testing.T, env *simtest.Env, mutate ...func(*Config)) (e *EC2, scrape func() scraped) {
	t.Helper()
	m := metrics.New("v-test")
	e = newTestEC2(t, env, append([]func(*Config){func(c *Config) { c.Observer = m }}, mutate...)...)
	return e, serveMetrics(t, m)
}

func serveMetrics(t *testing.T, m *metrics.Metrics) func() scraped {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.ServeListener(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() scraped {
		t.Helper()
		got, err := testutil.ScrapeMetrics(ln.Addr().String())
		if err != nil {
			t.Fatalf("scraping metrics: %v", err)
		}
		return got.Samples
	}
}
