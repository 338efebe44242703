// Package metrics defines ipamd's Prometheus metrics.
//
// The awscni_* names, types and labels are upstream's: dashboards and the
// cni-metrics-helper scrape them, so they must not change. The vpccni_*
// metrics are ours and explain behaviour upstream's do not: how long
// AddNetwork waited for an address, and EC2 calls and throttles by action.
package metrics
