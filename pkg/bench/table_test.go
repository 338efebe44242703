package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func sampleResults() *Results {
	return &Results{
		Schema: Schema, Started: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), ElapsedSeconds: 312.5,
		Host: Host{CPUs: 2, GoVersion: "go1.25"},
		Figures: []Figure{
			{ID: 1, Key: "cni_latency", Title: "CNI ADD/DEL latency, warm pool",
				Values: []Value{Millis("ADD p50", 12345*time.Microsecond), Millis("ADD p99", 31*time.Millisecond), Count("pods", 1000, "pods")},
				Method: "wall time of libcni AddNetworkList and DelNetworkList, one pod at a time, on an m5.4xlarge with WARM_IP_TARGET=64; the words of this method are long enough to wrap onto a second line of the footnotes"},
			{ID: 4, Key: "cold_burst", Title: "30 pods on a fresh node", Method: "realistic EC2 timing", Error: "agent exited: exit status 1"},
			{ID: 9, Key: "datastore", Title: "datastore assign+unassign",
				Values: []Value{{Name: "4096 addresses", Value: 1403.2, Unit: "ns/op"}, {Name: "ratio", Value: 0.5, Unit: ""}},
				Method: "go test -bench"},
		},
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, sampleResults()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	for _, want := range []string{
		"CNI ADD/DEL latency, warm pool [1]", "ADD p50", "12.3 ms", "31 ms", "1000 pods",
		"30 pods on a fresh node [2]", "NOT MEASURED", "agent exited",
		"[3] go test -bench", "1403 ns/op", "0.5",
		"[2] realistic EC2 timing NOT MEASURED: agent exited: exit status 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// The value column is aligned: every value line puts its value at the
	// same column as the header's "value".
	col := strings.Index(lines[0], "value")
	for _, l := range lines[1:4] {
		if len(l) <= col || l[col] == ' ' || l[col-1] != ' ' {
			t.Errorf("value not aligned at column %d in %q", col, l)
		}
	}
	// Footnotes wrap at 100 columns with a hanging indent.
	for _, l := range lines {
		if len(l) > 100 && strings.HasPrefix(l, "[") {
			t.Errorf("footnote line longer than 100: %q", l)
		}
	}
	if !strings.Contains(out, "\n    ") {
		t.Errorf("long footnote not wrapped with an indent:\n%s", out)
	}
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    Value
		want string
	}{
		{Value{Value: 1000, Unit: "pods"}, "1000 pods"},
		{Value{Value: 12.345, Unit: "ms"}, "12.3 ms"},
		{Value{Value: 1.234, Unit: "s"}, "1.23 s"},
		{Value{Value: 0.01234, Unit: "s"}, "0.0123 s"},
		{Value{Value: 250.6, Unit: "ns/op"}, "251 ns/op"},
		{Value{Value: -3}, "-3"},
		{Value{Value: math.Inf(1), Unit: "x"}, "+Inf x"},
	} {
		if got := FormatValue(tc.v); got != tc.want {
			t.Errorf("FormatValue(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestResultsJSONRoundTripAndValidation(t *testing.T) {
	r := sampleResults()
	r.Pool = &PoolSeries{Title: "pool", Samples: []PoolSample{{T: 0, Held: 29}, {T: 1, Held: 58, InUse: 10, ENIs: 2}}}
	var b bytes.Buffer
	if err := WriteJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSON(&b)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := got.Figure("cni_latency")
	if !ok {
		t.Fatal("figure cni_latency lost in JSON")
	}
	if v, ok := f.Get("ADD p50"); !ok || v.Value != 12.345 || v.Unit != "ms" {
		t.Errorf("ADD p50 after round trip = %+v, %v", v, ok)
	}
	if got.Pool == nil || len(got.Pool.Samples) != 2 || got.Pool.Samples[1].Held != 58 {
		t.Errorf("pool series after round trip = %+v", got.Pool)
	}

	for name, mutate := range map[string]func(*Results){
		"NaN value":         func(r *Results) { r.Figures[0].Values[0].Value = math.NaN() },
		"duplicate key":     func(r *Results) { r.Figures[1].Key = "cni_latency" },
		"no method":         func(r *Results) { r.Figures[2].Method = "" },
		"no values, no err": func(r *Results) { r.Figures[1].Error = "" },
		"time goes back":    func(r *Results) { r.Pool.Samples[1].T = -1 },
	} {
		r := sampleResults()
		r.Pool = &PoolSeries{Samples: []PoolSample{{T: 0}, {T: 1}}}
		mutate(r)
		if err := WriteJSON(&bytes.Buffer{}, r); err == nil {
			t.Errorf("%s: WriteJSON accepted it", name)
		}
	}
	if _, err := ReadJSON(strings.NewReader(`{"schema":"other/1"}`)); err == nil {
		t.Error("ReadJSON accepted a foreign schema")
	}
}

func TestWriteTableGoalsAndCompare(t *testing.T) {
	r := sampleResults()
	f := &r.Figures[0]
	if !f.SetGoal("ADD p50", AtMost(20, "≤ 1.3 × floor")) || !f.SetGoal("ADD p99", AtMost(20, "≤ 2 × floor")) {
		t.Fatal("SetGoal found no value")
	}
	if f.SetGoal("no such value", AtMost(1, "x")) {
		t.Error("SetGoal on a missing value reported success")
	}
	f.Values = append(f.Values, Count("failed ADDs", 0, "ADDs"))
	f.SetGoal("failed ADDs", AtMost(0, "0"))
	f.MergeCompare(Figure{Values: []Value{Millis("ADD p50", 24690*time.Microsecond), Count("only theirs", 3, "calls")}})
	r.Figures[2].MergeCompare(Figure{Error: "compare ipamd exited"})
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteTable(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"compare", "ours/compare", "goal", "to goal",
		"24.7 ms", "0.50", // compare value and ratio ours/compare
		"≤ 1.3 × floor", "0.62 ok", // 12.3/20
		"1.55 MISSED", // 31/20
		"only theirs", "NOT MEASURED: compare ipamd exited",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "failed ADDs") && !strings.HasSuffix(strings.Join(strings.Fields(l), " "), "- - 0 ok") {
			t.Errorf("zero-limit goal: %q, want the goal 0 and ok without a ratio", l)
		}
	}
	// Without compare values there are no compare columns.
	b.Reset()
	if err := WriteTable(&b, sampleResults()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "ours/compare") {
		t.Errorf("compare columns without a compare agent:\n%s", b.String())
	}
}

func TestGoal(t *testing.T) {
	for _, c := range []struct {
		g    *Goal
		v    float64
		met  bool
		r    float64
		hasR bool
	}{
		{AtMost(10, "≤ 10"), 5, true, 0.5, true},
		{AtMost(10, "≤ 10"), 15, false, 1.5, true},
		{AtLeast(50, "≥ 50"), 25, false, 0.5, true},
		{AtLeast(50, "≥ 50"), 60, true, 1.2, true},
		{AtMost(0, "0"), 0, true, 0, false},
		{AtMost(0, "0"), 1, false, 0, false},
	} {
		r, ok := c.g.Ratio(c.v)
		if c.g.Met(c.v) != c.met || ok != c.hasR || math.Abs(r-c.r) > 1e-9 {
			t.Errorf("%+v at %v: met %v ratio %v,%v; want %v %v,%v", *c.g, c.v, c.g.Met(c.v), r, ok, c.met, c.r, c.hasR)
		}
	}
}
