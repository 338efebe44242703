package bench

import (
	"fmt"
	"math"
)

// Goal is the target a value is held to (issue 15's goals): Value ≤ Limit,
// or Value ≥ Limit with AtLeast. Text says where the limit comes from, e.g.
// "≤ 1.3 × floor ADD p50", because many limits are set from another figure
// of the same run.
type Goal struct {
	Limit   float64 `json:"limit"`
	AtLeast bool    `json:"atLeast,omitempty"`
	Text    string  `json:"text"`
}

// Met reports whether v reaches the goal.
func (g Goal) Met(v float64) bool {
	if g.AtLeast {
		return v >= g.Limit
	}
	return v <= g.Limit
}

// Ratio is v over the limit (1 is exactly at the goal); ok is false when
// the limit is 0 (e.g. "0 failures"), where only Met says anything.
func (g Goal) Ratio(v float64) (r float64, ok bool) {
	if g.Limit == 0 {
		return 0, false
	}
	return v / g.Limit, true
}

// AtMost is the goal v ≤ limit.
func AtMost(limit float64, format string, args ...any) *Goal {
	return &Goal{Limit: limit, Text: fmt.Sprintf(format, args...)}
}

// AtLeast is the goal v ≥ limit.
func AtLeast(limit float64, format string, args ...any) *Goal {
	return &Goal{Limit: limit, AtLeast: true, Text: fmt.Sprintf(format, args...)}
}

// SetGoal attaches g to the value called name; false if there is no such
// value (a figure not measured, or a value the run did not produce).
func (f *Figure) SetGoal(name string, g *Goal) bool {
	for i := range f.Values {
		if f.Values[i].Name == name {
			f.Values[i].Goal = g
			return true
		}
	}
	return false
}

// MergeCompare copies the values of c — the same figure measured for the
// compare agent — into f's values of the same name as their Compare. A
// compare figure that could not be measured leaves its reason in
// f.CompareError.
func (f *Figure) MergeCompare(c Figure) {
	if c.Error != "" {
		f.CompareError = c.Error
		return
	}
	for _, cv := range c.Values {
		found := false
		for i := range f.Values {
			if f.Values[i].Name == cv.Name {
				x := cv.Value
				f.Values[i].Compare = &x
				found = true
			}
		}
		if !found && f.Error == "" {
			// Only the compare agent has it (e.g. an action only its ipamd
			// called): ours is 0 of it.
			x := cv.Value
			f.Values = append(f.Values, Value{Name: cv.Name, Unit: cv.Unit, Compare: &x})
		}
	}
}

// CompareRatio is ours over compare; ok is false without a compare value
// or when compare is 0.
func (v Value) CompareRatio() (float64, bool) {
	if v.Compare == nil || *v.Compare == 0 {
		return 0, false
	}
	return v.Value / *v.Compare, true
}

func (g *Goal) validate() error {
	if g == nil {
		return nil
	}
	if math.IsNaN(g.Limit) || math.IsInf(g.Limit, 0) {
		return fmt.Errorf("goal limit is %v", g.Limit)
	}
	if g.Text == "" {
		return fmt.Errorf("goal has no text")
	}
	return nil
}
