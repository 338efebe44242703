package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// svgDoc is what the test reads back from the plot.
type svgDoc struct {
	XMLName   xml.Name `xml:"svg"`
	Width     int      `xml:"width,attr"`
	Height    int      `xml:"height,attr"`
	Polylines []struct {
		Stroke string `xml:"stroke,attr"`
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
	Texts []string `xml:"text"`
}

func parseSVG(t *testing.T, data []byte) svgDoc {
	t.Helper()
	// Token by token first: every element closes, every entity is valid.
	dec := xml.NewDecoder(bytes.NewReader(data))
	for {
		_, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, data)
		}
	}
	var doc svgDoc
	if err := xml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("SVG: %v", err)
	}
	return doc
}

func TestWritePoolSVG(t *testing.T) {
	s := PoolSeries{
		Title: `node <churn> & "defaults"`,
		Samples: []PoolSample{
			{T: 0, Held: 29, InUse: 0, ENIs: 1},
			{T: 0.5, Held: 29, InUse: 10, ENIs: 1},
			{T: 1.0, Held: 58, InUse: 25, ENIs: 2},
			{T: 7.25, Held: 87, InUse: 40, ENIs: 3},
		},
		Marks: []Mark{{T: 0.5, Label: "demand 40 & churn"}, {T: 99, Label: "beyond the end"}},
	}
	var b bytes.Buffer
	if err := WritePoolSVG(&b, s); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, b.Bytes())
	if doc.Width != svgW || doc.Height != svgH {
		t.Errorf("size %dx%d, want %dx%d", doc.Width, doc.Height, svgW, svgH)
	}
	if len(doc.Polylines) != 2 {
		t.Fatalf("%d polylines, want 2 (held, in use)", len(doc.Polylines))
	}
	for _, pl := range doc.Polylines {
		// A step line has two points per sample after the first.
		if n := len(strings.Fields(pl.Points)); n != 2*len(s.Samples)-1 {
			t.Errorf("%s line has %d points, want %d", pl.Stroke, n, 2*len(s.Samples)-1)
		}
	}
	texts := strings.Join(doc.Texts, "|")
	for _, want := range []string{`node <churn> & "defaults"`, "demand 40 & churn", "time (s)", "pods"} {
		if !strings.Contains(texts, want) {
			t.Errorf("SVG text lacks %q: %s", want, texts)
		}
	}
	if strings.Contains(texts, "beyond the end") {
		t.Error("a mark past the end of the series was drawn")
	}
	// The y axis reaches at least the highest value: 87 → a tick of 100.
	if !strings.Contains(texts, "|100|") {
		t.Errorf("y axis does not reach 100: %s", texts)
	}
}

func TestWritePoolSVGStaticModel(t *testing.T) {
	s := PoolSeries{Samples: []PoolSample{
		{T: 0, Held: 29, InUse: 0},
		{T: 1, Held: 58, InUse: 20, Static: 87},
		{T: 2, Held: 58, InUse: 20, Static: 232},
		{T: 3, Held: 58, InUse: 10},
	}}
	var b bytes.Buffer
	if err := WritePoolSVG(&b, s); err != nil {
		t.Fatal(err)
	}
	doc := parseSVG(t, b.Bytes())
	if len(doc.Polylines) != 3 || doc.Polylines[2].Stroke != colorStatic {
		t.Fatalf("polylines %+v, want held, pods and the static model", doc.Polylines)
	}
	// Only where modelled: two samples, a step between them.
	if n := len(strings.Fields(doc.Polylines[2].Points)); n != 3 {
		t.Errorf("static line has %d points, want 3", n)
	}
	if texts := strings.Join(doc.Texts, "|"); !strings.Contains(texts, "static algorithm") || !strings.Contains(texts, "|250|") {
		t.Errorf("legend or y axis (232 → 250) missing: %s", texts)
	}
}

func TestWritePoolSVGSingleSampleAndZeros(t *testing.T) {
	var b bytes.Buffer
	if err := WritePoolSVG(&b, PoolSeries{Samples: []PoolSample{{}}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "NaN") || strings.Contains(b.String(), "Inf") {
		t.Errorf("degenerate series drew NaN/Inf coordinates:\n%s", b.String())
	}
	parseSVG(t, b.Bytes())
}

func TestWritePoolSVGRejectsBadSeries(t *testing.T) {
	for name, s := range map[string]PoolSeries{
		"empty":          {},
		"time goes back": {Samples: []PoolSample{{T: 2}, {T: 1}}},
		"negative held":  {Samples: []PoolSample{{T: 0, Held: -1}}},
	} {
		if err := WritePoolSVG(io.Discard, s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct {
		span float64
		n    int
		want float64
	}{
		{100, 10, 10}, {87, 6, 20}, {7.25, 10, 1}, {0, 10, 1}, {130, 10, 20}, {0.3, 6, 0.05},
	} {
		if got := niceStep(tc.span, tc.n); got != tc.want {
			t.Errorf("niceStep(%v, %d) = %v, want %v", tc.span, tc.n, got, tc.want)
		}
	}
}
