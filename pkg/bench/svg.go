package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// PoolSample is one observation of a node's pool.
type PoolSample struct {
	T     float64 `json:"t"`     // seconds since the series started
	Held  int     `json:"held"`  // addresses held by the node's ENIs for pods (EC2's view)
	InUse int     `json:"inUse"` // pods holding an address
	ENIs  int     `json:"enis"`  // ENIs attached to the node
	// Static is what the static algorithm would hold here (StaticPool),
	// where it was modelled; 0 elsewhere.
	Static int `json:"static,omitempty"`
}

// Mark is a labelled moment of the series, e.g. a change of demand.
type Mark struct {
	T     float64 `json:"t"`
	Label string  `json:"label"`
}

// PoolSeries is a node's pool over time: the data behind the plot.
type PoolSeries struct {
	Title   string       `json:"title"`
	Samples []PoolSample `json:"samples"`
	Marks   []Mark       `json:"marks,omitempty"`
}

func (s *PoolSeries) validate() error {
	if len(s.Samples) == 0 {
		return errors.New("no samples")
	}
	prev := math.Inf(-1)
	for i, p := range s.Samples {
		if math.IsNaN(p.T) || math.IsInf(p.T, 0) || p.T < 0 {
			return fmt.Errorf("sample %d: time %v", i, p.T)
		}
		if p.T < prev {
			return fmt.Errorf("sample %d: time %v goes back (previous %v)", i, p.T, prev)
		}
		prev = p.T
		if p.Held < 0 || p.InUse < 0 || p.ENIs < 0 {
			return fmt.Errorf("sample %d: negative count", i)
		}
	}
	for i, m := range s.Marks {
		if math.IsNaN(m.T) || math.IsInf(m.T, 0) {
			return fmt.Errorf("mark %d: time %v", i, m.T)
		}
	}
	return nil
}

// Plot geometry, in SVG user units.
const (
	svgW, svgH                    = 900, 440
	padL, padR, padTop, padBottom = 64, 24, 56, 56
	plotW, plotH                  = svgW - padL - padR, svgH - padTop - padBottom
)

// Series colours: addresses held, pods in use.
const (
	colorHeld   = "#1f77b4"
	colorInUse  = "#d62728"
	colorStatic = "#2ca02c"
)

// WritePoolSVG draws the pool series as a standalone SVG: addresses held
// and pods in use as step lines over time, with demand changes marked.
func WritePoolSVG(w io.Writer, s PoolSeries) error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("pool plot: %w", err)
	}
	tMax := s.Samples[len(s.Samples)-1].T
	yMax := 0
	for _, p := range s.Samples {
		yMax = max(yMax, p.Held, p.InUse, p.Static)
	}
	xStep := niceStep(tMax, 10)
	xTop := math.Max(xStep, math.Ceil(tMax/xStep)*xStep)
	yStep := niceStep(float64(yMax), 6)
	yTop := math.Max(yStep, math.Ceil(float64(yMax)/yStep)*yStep)
	x := func(t float64) float64 { return padL + t/xTop*plotW }
	y := func(v float64) float64 { return padTop + plotH - v/yTop*plotH }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", padL, esc(s.Title))

	// Grid and axes.
	for v := 0.0; v <= yTop+yStep/2; v += yStep {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y(v), padL+plotW, y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y(v)+4, trimNum(v))
	}
	for t := 0.0; t <= xTop+xStep/2; t += xStep {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>`+"\n", x(t), padTop+plotH, x(t), padTop+plotH+4)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), padTop+plotH+18, trimNum(t))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", padL, padTop, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time (s)</text>`+"\n", padL+plotW/2, svgH-14)
	fmt.Fprintf(&b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">addresses</text>`+"\n", padTop+plotH/2, padTop+plotH/2)

	// Demand changes.
	for _, m := range s.Marks {
		if m.T < 0 || m.T > xTop {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#888" stroke-dasharray="4 3"/>`+"\n", x(m.T), padTop, x(m.T), padTop+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" fill="#555">%s</text>`+"\n", x(m.T)+3, padTop+12, esc(m.Label))
	}

	// The two series as step lines: a value holds until the next sample.
	for _, line := range []struct {
		color string
		get   func(PoolSample) int
	}{
		{colorHeld, func(p PoolSample) int { return p.Held }},
		{colorInUse, func(p PoolSample) int { return p.InUse }},
	} {
		var pts strings.Builder
		for i, p := range s.Samples {
			if i > 0 {
				fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.T), y(float64(line.get(s.Samples[i-1]))))
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.T), y(float64(line.get(p))))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", line.color, strings.TrimSpace(pts.String()))
	}

	// The static algorithm's model, dashed, where it was modelled.
	var pts strings.Builder
	for i, p := range s.Samples {
		if p.Static == 0 {
			continue
		}
		if i > 0 && s.Samples[i-1].Static != 0 {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.T), y(float64(s.Samples[i-1].Static)))
		}
		fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.T), y(float64(p.Static)))
	}
	hasStatic := pts.Len() > 0
	if hasStatic {
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="6 3" points="%s"/>`+"\n", colorStatic, strings.TrimSpace(pts.String()))
	}

	// Legend, above the plot on the right.
	lx := padL + plotW - 360
	fmt.Fprintf(&b, `<line x1="%d" y1="42" x2="%d" y2="42" stroke="%s" stroke-width="3"/>`+"\n", lx, lx+20, colorHeld)
	fmt.Fprintf(&b, `<text x="%d" y="46">addresses held (ENIs' secondary IPs)</text>`+"\n", lx+26)
	fmt.Fprintf(&b, `<line x1="%d" y1="42" x2="%d" y2="42" stroke="%s" stroke-width="3"/>`+"\n", lx+275, lx+295, colorInUse)
	fmt.Fprintf(&b, `<text x="%d" y="46">pods</text>`+"\n", lx+301)
	if hasStatic {
		// left of the others: the title runs above them
		fmt.Fprintf(&b, `<line x1="%d" y1="42" x2="%d" y2="42" stroke="%s" stroke-width="3" stroke-dasharray="6 3"/>`+"\n", lx-230, lx-210, colorStatic)
		fmt.Fprintf(&b, `<text x="%d" y="46">static algorithm (model)</text>`+"\n", lx-204)
	}
	b.WriteString("</svg>\n")
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("pool plot: %w", err)
	}
	return nil
}

// niceStep is a 1, 2 or 5 × 10^k step that cuts [0, span] into at most
// about n intervals.
func niceStep(span float64, n int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			return math.Max(m*mag, 1e-9)
		}
	}
	return 10 * mag
}

func trimNum(v float64) string {
	if math.Abs(v-math.Round(v)) < 1e-9 {
		return fmt.Sprintf("%d", int64(math.Round(v)))
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s)) // writes to a buffer: cannot fail
	return b.String()
}
