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

// ObserveEC2Call records one EC2 API call under both upstream's names and
// ours. code is the EC2 error code, empty on success.
func (m *Metrics) ObserveEC2Call(action string, d time.Duration, code string, throttled bool) {
	failed := code != ""
	m.AWSAPILatency.WithLabelValues(action, strconv.FormatBool(failed), latencyStatus(code)).Observe(float64(d.Milliseconds()))
	m.EC2Requests.WithLabelValues(action).Inc()
	m.EC2Calls.WithLabelValues(action, code).Inc()
	if failed {
		m.EC2Errors.WithLabelValues(action).Inc()
		m.AWSAPIErrors.WithLabelValues(action, code).Inc()
	}
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
