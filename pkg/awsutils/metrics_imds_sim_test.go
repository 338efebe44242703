package awsutils

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/metrics"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestIMDSReadErrorsCountedAsUpstream: a failed instance-metadata read
// counts in awscni_aws_api_error_count under upstream's getter name with
// error="IMDSRequestError" where upstream's getter turns the failure into
// its own error type (subnet-id: GetSubnetID); where it hands the SDK's
// error back unwrapped (mac: GetMAC), upstream's counter skips it, and
// so does ours (docs/compatibility.md, "Metrics").
func TestIMDSReadErrorsCountedAsUpstream(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	target, err := url.Parse(env.IMDSURL(instanceID))
	if err != nil {
		t.Fatal(err)
	}
	// IMDS refuses the paths ending in failing, as it does while it
	// rebuilds an instance's tree.
	var failing atomic.Value
	failing.Store("")
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := failing.Load().(string); f != "" && strings.HasSuffix(r.URL.Path, f) {
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	m := metrics.New("v-test")
	scrape := serveMetrics(t, m)
	md, err := NewMetadata(Config{IMDSEndpoint: front.URL, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if _, err := md.ENIs(ctx); err != nil {
		t.Fatal(err)
	}
	if s := scrape(); s.has("awscni_aws_api_error_count", "error", "IMDSRequestError") {
		t.Fatalf("IMDS errors counted after reads that all succeeded: %v", s)
	}

	failing.Store("/subnet-id")
	if _, err := md.ENIs(ctx); err == nil {
		t.Fatal("ENIs succeeded though IMDS refuses subnet-id")
	}
	const subnetErr = `awscni_aws_api_error_count{api="GetSubnetID",error="IMDSRequestError"}`
	if got := scrape()[subnetErr]; got != 1 {
		t.Errorf("%s = %v after one refused subnet-id read, want 1", subnetErr, got)
	}

	failing.Store("/meta-data/mac")
	if _, err := md.ENIs(ctx); err == nil {
		t.Fatal("ENIs succeeded though IMDS refuses mac")
	}
	if s := scrape(); s.has("awscni_aws_api_error_count", "api", "GetMAC") {
		t.Error("awscni_aws_api_error_count has api=\"GetMAC\" for a refused mac read; upstream's GetMAC returns the SDK's error, which its counter skips")
	}
}
