// Package bench holds the pure side of `make bench`: latency percentiles,
// the figures and their JSON file, the printed table with one footnote per
// figure saying how it was measured, the SVG plot of the warm pool over
// time, and the parser for `go test -bench` output. It does no I/O of its
// own beyond the writers it is given; the orchestration that measures
// things in a local VPC lives in cmd/vpccni-bench.
package bench
