package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Schema names the format of the results file.
const Schema = "vpccni-bench/1"

// Results is everything one bench run measured: bench/results.json.
type Results struct {
	Schema         string    `json:"schema"`
	Started        time.Time `json:"started"`
	ElapsedSeconds float64   `json:"elapsedSeconds"`
	Quick          bool      `json:"quick"`
	Host           Host      `json:"host"`
	Figures        []Figure  `json:"figures"`
	// CompareAgent names the compare agent's binaries when figures were
	// measured side by side ("" = ours alone).
	CompareAgent string `json:"compareAgent,omitempty"`
	// Pool is the data behind the plot: the churn node's pool over time.
	Pool *PoolSeries `json:"pool,omitempty"`
}

// Host describes the machine the figures were taken on.
type Host struct {
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel,omitempty"`
	GoVersion string `json:"goVersion"`
	Version   string `json:"version,omitempty"` // vpc-cni build
	// Load is the 1-minute load average at the start and at the end of the
	// run: other work on the machine makes latencies worse.
	Load [2]float64 `json:"loadAverage"`
}

// Figure is one measured quantity (possibly several values, e.g. p50 and
// p99) with the method that produced it. A figure that could not be
// measured keeps its Method and carries Error instead of Values.
type Figure struct {
	ID     int     `json:"id"`
	Key    string  `json:"key"`
	Title  string  `json:"title"`
	Values []Value `json:"values,omitempty"`
	Method string  `json:"method"`
	Error  string  `json:"error,omitempty"`
	// CompareError says why the compare agent's side of the figure could
	// not be measured (side by side only).
	CompareError string `json:"compareError,omitempty"`
}

// Value is one number of a figure.
type Value struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Compare is the same value for the compare agent (side by side).
	Compare *float64 `json:"compare,omitempty"`
	// Goal is the target for this value, if the issue sets one.
	Goal *Goal `json:"goal,omitempty"`
}

// Get returns the value called name.
func (f Figure) Get(name string) (Value, bool) {
	for _, v := range f.Values {
		if v.Name == name {
			return v, true
		}
	}
	return Value{}, false
}

// Figure returns the figure with the given key.
func (r *Results) Figure(key string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.Key == key {
			return f, true
		}
	}
	return Figure{}, false
}

// Millis is a duration value in milliseconds.
func Millis(name string, d time.Duration) Value {
	return Value{Name: name, Value: float64(d) / float64(time.Millisecond), Unit: "ms"}
}

// Seconds is a duration value in seconds.
func Seconds(name string, d time.Duration) Value {
	return Value{Name: name, Value: d.Seconds(), Unit: "s"}
}

// Count is a plain count.
func Count(name string, n int, unit string) Value {
	return Value{Name: name, Value: float64(n), Unit: unit}
}

// LatencyValues turns a summary into "<prefix>p50", "<prefix>p99",
// "<prefix>max" (ms) and "<prefix>n" values.
func LatencyValues(prefix string, l Latency) []Value {
	return []Value{
		Millis(prefix+"p50", l.P50),
		Millis(prefix+"p99", l.P99),
		Millis(prefix+"max", l.Max),
		Count(prefix+"n", l.N, "samples"),
	}
}

// Validate checks what JSON cannot carry or a reader could not trust:
// non-finite numbers, figures without a key or method, duplicate keys.
func (r *Results) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, f := range r.Figures {
		if f.Key == "" {
			errs = append(errs, fmt.Errorf("figure %d (%q) has no key", f.ID, f.Title))
		}
		if seen[f.Key] {
			errs = append(errs, fmt.Errorf("figure key %q appears twice", f.Key))
		}
		seen[f.Key] = true
		if f.Method == "" {
			errs = append(errs, fmt.Errorf("figure %q has no method", f.Key))
		}
		if f.Error == "" && len(f.Values) == 0 {
			errs = append(errs, fmt.Errorf("figure %q has neither values nor an error", f.Key))
		}
		for _, v := range f.Values {
			if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
				errs = append(errs, fmt.Errorf("figure %q value %q is %v", f.Key, v.Name, v.Value))
			}
			if v.Compare != nil && (math.IsNaN(*v.Compare) || math.IsInf(*v.Compare, 0)) {
				errs = append(errs, fmt.Errorf("figure %q value %q: compare is %v", f.Key, v.Name, *v.Compare))
			}
			if err := v.Goal.validate(); err != nil {
				errs = append(errs, fmt.Errorf("figure %q value %q: %w", f.Key, v.Name, err))
			}
		}
	}
	if r.Pool != nil {
		if err := r.Pool.validate(); err != nil {
			errs = append(errs, fmt.Errorf("pool series: %w", err))
		}
	}
	return errors.Join(errs...)
}

// WriteJSON validates r and writes it as indented JSON.
func WriteJSON(w io.Writer, r *Results) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// ReadJSON reads a results file written by WriteJSON.
func ReadJSON(rd io.Reader) (*Results, error) {
	var r Results
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("results: schema %q, want %q", r.Schema, Schema)
	}
	return &r, nil
}
