package testutil

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Scrape is one read of a Prometheus /metrics page.
type Scrape struct {
	// Samples maps "name{labels}" to its value; histograms and summaries
	// appear as their _count, _sum and bucket or quantile series.
	Samples map[string]float64
	// Types maps a family's name to its "# TYPE" (counter, gauge, ...).
	Types map[string]string
}

// ScrapeMetrics reads http://addr/metrics in the text format.
func ScrapeMetrics(addr string) (Scrape, error) {
	s := Scrape{Samples: map[string]float64{}, Types: map[string]string{}}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, kind, _ := strings.Cut(rest, " ")
			s.Types[name] = kind
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return s, fmt.Errorf("sample %q: %w", line, err)
		}
		s.Samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("reading %s/metrics: %w", addr, err)
	}
	return s, nil
}
