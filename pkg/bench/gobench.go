package bench

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// GoBench is one result line of `go test -bench`.
type GoBench struct {
	Name       string             `json:"name"`  // without the -GOMAXPROCS suffix
	Procs      int                `json:"procs"` // the suffix, 1 if absent
	Iterations int64              `json:"iterations"`
	Metrics    map[string]float64 `json:"metrics"` // by unit: "ns/op", "B/op", "allocs/op", …
}

// ParseGoBench reads `go test -bench` output and returns its result lines
// in order. Other lines (goos, PASS, log output, a benchmark's bare name
// printed before its logs) are skipped; a result line that does not parse
// is an error naming it.
func ParseGoBench(r io.Reader) ([]GoBench, error) {
	var out []GoBench
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		b, err := parseBenchLine(f)
		if err != nil {
			return nil, fmt.Errorf("go test -bench output line %d %q: %w", n, sc.Text(), err)
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("go test -bench output: %w", err)
	}
	return out, nil
}

func parseBenchLine(f []string) (GoBench, error) {
	b := GoBench{Name: f[0], Procs: 1, Metrics: map[string]float64{}}
	if i := strings.LastIndexByte(f[0], '-'); i > 0 {
		if p, err := strconv.Atoi(f[0][i+1:]); err == nil && p > 0 {
			b.Name, b.Procs = f[0][:i], p
		}
	}
	it, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || it <= 0 {
		return b, fmt.Errorf("iterations %q: want a positive integer", f[1])
	}
	b.Iterations = it
	rest := f[2:]
	if len(rest) == 0 || len(rest)%2 != 0 {
		return b, fmt.Errorf("want value/unit pairs after the iterations, got %q", strings.Join(rest, " "))
	}
	for i := 0; i < len(rest); i += 2 {
		v, err := strconv.ParseFloat(rest[i], 64)
		if err != nil {
			return b, fmt.Errorf("value %q for %s: %w", rest[i], rest[i+1], err)
		}
		b.Metrics[rest[i+1]] = v
	}
	return b, nil
}
