package metrics

import (
	"strconv"
	"time"
)

// Codes awsutils reports when no EC2 response came back, so there is no
// EC2 error code to show.
const (
	codeRequestError    = "RequestError"
	codeRequestCanceled = "RequestCanceled"
)

// ObserveEC2Call records one EC2 operation, its retries included, under
// upstream's names: upstream counts and times each call as its caller saw
// it. code is the final EC2 error code, empty on success.
func (m *Metrics) ObserveEC2Call(action string, d time.Duration, code string) {
	failed := code != ""
	m.EC2Requests.WithLabelValues(action).Inc()
	if failed {
		m.EC2Errors.WithLabelValues(action).Inc()
	}
	if countedOnly(action) {
		return
	}
	m.AWSAPILatency.WithLabelValues(latencyAPI(action), strconv.FormatBool(failed), latencyStatus(code)).Observe(float64(d.Milliseconds()))
	if !failed {
		return
	}
	// Upstream counts API errors only: no answer, no error code.
	if code != codeRequestError && code != codeRequestCanceled {
		m.AWSAPIErrors.WithLabelValues(action, code).Inc()
	}
}

// countedOnly reports the operations upstream counts in its request and
// error counters but neither times nor counts by error code
// (docs/compatibility.md, "Metrics").
func countedOnly(action string) bool {
	return action == "DescribeInstanceTypes"
}

// ObserveEC2Listing records one paginated listing as upstream's
// leaked-ENI sweep counts it: one request once every page came back; for
// a failed page an error (with its EC2 code) and no request; no timing.
func (m *Metrics) ObserveEC2Listing(action, code string) {
	if code == "" {
		m.EC2Requests.WithLabelValues(action).Inc()
		return
	}
	m.EC2Errors.WithLabelValues(action).Inc()
	if code != codeRequestError && code != codeRequestCanceled {
		m.AWSAPIErrors.WithLabelValues(action, code).Inc()
	}
}

// ObserveAPIError counts a failure in awscni_aws_api_error_count under
// one of upstream's names that is no EC2 operation (an instance-metadata
// getter, IMDSMetaDataOutOfSync).
func (m *Metrics) ObserveAPIError(api, code string) {
	m.AWSAPIErrors.WithLabelValues(api, code).Inc()
}

// latencyAPI is upstream's api label of awscni_aws_api_latency_ms for an
// EC2 operation: its name, except the one upstream times under the name of
// the SDK v1 method it once called (docs/compatibility.md, "Metrics"). Its
// count series keep the operation's name, as upstream's do.
func latencyAPI(action string) string {
	if action == "AssignIpv6Addresses" {
		return "AssignIpv6AddressesWithContext"
	}
	return action
}

// ObserveEC2Attempt records one EC2 HTTP attempt under our names, which
// count what EC2 counts against the account: retries too.
func (m *Metrics) ObserveEC2Attempt(action string, _ time.Duration, code string, throttled bool) {
	m.EC2Calls.WithLabelValues(action, code).Inc()
	if throttled {
		m.EC2Throttles.WithLabelValues(action).Inc()
	}
}

// latencyStatus is upstream's status label of awscni_aws_api_latency_ms:
// "200" on success, EC2's error code on an API error, and empty when no
// answer came back (docs/compatibility.md, "Metrics").
func latencyStatus(code string) string {
	switch code {
	case "":
		return "200"
	case codeRequestError, codeRequestCanceled:
		return ""
	}
	return code
}

// ObserveUnhandled counts an EC2 error awsutils could not get past, as
// awscni_aws_utils_error_count{fn,error}. The error label is EC2's error
// code: upstream puts the whole error text there, request id included, a
// new series per failure (docs/compatibility.md, "Metrics").
func (m *Metrics) ObserveUnhandled(fn, code string) {
	m.AWSUtilsErrors.WithLabelValues(fn, code).Inc()
}

// ObserveIMDSRead times one instance-metadata read as upstream does, in
// awscni_aws_api_latency_ms{api="GetMetadata"}; a failed read has an empty
// status, as IMDS answers no error code.
func (m *Metrics) ObserveIMDSRead(d time.Duration, failed bool) {
	status := "200"
	if failed {
		status = ""
	}
	m.AWSAPILatency.WithLabelValues("GetMetadata", strconv.FormatBool(failed), status).Observe(float64(d.Milliseconds()))
}

// ObserveIMDSWait times one wait for instance metadata to list a new ENI
// as upstream times its own, in
// awscni_aws_api_latency_ms{api="waitForENIAndIPsAttached"}: status "200"
// when it did, empty when the wait gave up (docs/compatibility.md,
// "Metrics").
func (m *Metrics) ObserveIMDSWait(d time.Duration, listed bool) {
	status := "200"
	if !listed {
		status = ""
	}
	m.AWSAPILatency.WithLabelValues("waitForENIAndIPsAttached", strconv.FormatBool(!listed), status).Observe(float64(d.Milliseconds()))
}
