package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the figures as an aligned table, one line per value,
// each figure marked [n] with its method as footnote n below the table.
// A value with a goal shows the goal and its ratio to it (value ÷ limit)
// with "ok" or "MISSED"; when any value has a compare agent's counterpart,
// two more columns give it and the ratio ours/compare. Figures that could
// not be measured say so, with the reason.
func WriteTable(w io.Writer, r *Results) error {
	compare := r.hasCompare()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := " #\tfigure\tmeasure\tvalue"
	if compare {
		head += "\tcompare\tours/compare"
	}
	fmt.Fprintln(tw, head+"\tgoal\tto goal")
	for i, f := range r.Figures {
		title := fmt.Sprintf("%s [%d]", f.Title, i+1)
		if f.Error != "" {
			fmt.Fprintf(tw, "%2d\t%s\tNOT MEASURED\t%s\n", f.ID, title, oneLine(f.Error, 70))
			continue
		}
		for j, v := range f.Values {
			id, t := "", ""
			if j == 0 {
				id, t = fmt.Sprintf("%2d", f.ID), title
			}
			row := fmt.Sprintf("%s\t%s\t%s\t%s", id, t, v.Name, FormatValue(v))
			if compare {
				row += "\t" + formatCompare(v)
			}
			fmt.Fprintf(tw, "%s\t%s\n", row, formatGoal(v))
		}
		if compare && f.CompareError != "" {
			fmt.Fprintf(tw, "\t\tcompare agent\t\tNOT MEASURED: %s\t\t\t\n", oneLine(f.CompareError, 60))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	var b strings.Builder
	b.WriteString("\n")
	for i, f := range r.Figures {
		text := f.Method
		if f.Error != "" {
			text += " NOT MEASURED: " + f.Error
		}
		if f.CompareError != "" {
			text += " Compare agent NOT MEASURED: " + f.CompareError
		}
		b.WriteString(wrap(fmt.Sprintf("[%d] ", i+1), text, 100))
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("table: %w", err)
	}
	return nil
}

func (r *Results) hasCompare() bool {
	if r.CompareAgent != "" {
		return true
	}
	for _, f := range r.Figures {
		for _, v := range f.Values {
			if v.Compare != nil {
				return true
			}
		}
	}
	return false
}

func formatCompare(v Value) string {
	if v.Compare == nil {
		return "-\t-"
	}
	c := FormatValue(Value{Value: *v.Compare, Unit: v.Unit})
	if r, ok := v.CompareRatio(); ok {
		return c + "\t" + strconv.FormatFloat(r, 'f', 2, 64)
	}
	return c + "\t-"
}

// formatGoal is "goal<TAB>ratio verdict", or two empty cells.
func formatGoal(v Value) string {
	g := v.Goal
	if g == nil {
		return "\t"
	}
	verdict := "MISSED"
	if g.Met(v.Value) {
		verdict = "ok"
	}
	if r, ok := g.Ratio(v.Value); ok {
		return g.Text + "\t" + strconv.FormatFloat(r, 'f', 2, 64) + " " + verdict
	}
	return g.Text + "\t" + verdict
}

// FormatValue prints a number with as many digits as it deserves, and its
// unit: integers exactly, otherwise three significant figures or more.
func FormatValue(v Value) string {
	x := v.Value
	var s string
	switch a := math.Abs(x); {
	case x == math.Trunc(x) && a < 1e15:
		s = strconv.FormatInt(int64(x), 10)
	case a >= 100:
		s = strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 1:
		s = strconv.FormatFloat(x, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(x, 'g', 3, 64)
	}
	if v.Unit == "" {
		return s
	}
	return s + " " + v.Unit
}

// wrap renders text after a hanging label, wrapped at width columns.
func wrap(label, text string, width int) string {
	var b strings.Builder
	indent := strings.Repeat(" ", len(label))
	line := label
	fresh := true
	for _, word := range strings.Fields(text) {
		if !fresh && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line, fresh = indent, true
		}
		if !fresh {
			line += " "
		}
		line += word
		fresh = false
	}
	b.WriteString(line + "\n")
	return b.String()
}

// oneLine collapses whitespace and cuts s to n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
