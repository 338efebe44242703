package metrics

import (
	"strconv"
	"time"
)

// ObserveEC2Call records one EC2 API call under both upstream's names and
// ours. code is the EC2 error code, empty on success.
func (m *Metrics) ObserveEC2Call(action string, d time.Duration, code string, throttled bool) {
	failed := code != ""
	status := "200"
	if failed {
		status = "error"
	}
	m.AWSAPILatency.WithLabelValues(action, strconv.FormatBool(failed), status).Observe(float64(d.Milliseconds()))
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
