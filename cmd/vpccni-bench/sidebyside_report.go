package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
)

const (
	keySideBySide = "side_by_side_pool"
	sbsFigureID   = 20
)

// sbsRow is one line of the side-by-side table.
type sbsRow struct {
	name, unit string
	get        func(sbsRun) float64
}

func sbsRows(runs []sbsRun, pods int) []sbsRow {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	rows := []sbsRow{
		{"EC2 calls, whole scenario", "calls", func(r sbsRun) float64 { return float64(r.Total) }},
	}
	for _, a := range sbsActions(runs) {
		rows = append(rows, sbsRow{"  " + a, "calls", func(r sbsRun) float64 { return float64(r.Calls[a]) }})
	}
	return append(rows,
		sbsRow{"idle addresses, settled", "addresses", func(r sbsRun) float64 { return float64(r.IdleSettled) }},
		sbsRow{fmt.Sprintf("idle addresses, at %d pods", pods), "addresses", func(r sbsRun) float64 { return float64(r.IdleAt30) }},
		sbsRow{"idle addresses, after delete (released)", "addresses", func(r sbsRun) float64 { return float64(r.IdleAfterDelete) }},
		sbsRow{"idle addresses, churn mean", "addresses", func(r sbsRun) float64 { return r.ChurnIdleMean }},
		sbsRow{"idle addresses, churn max", "addresses", func(r sbsRun) float64 { return float64(r.ChurnIdleMax) }},
		sbsRow{"ENIs during churn (max)", "ENIs", func(r sbsRun) float64 { return float64(r.ENIsDuringChurn) }},
		sbsRow{"failed ADDs during churn", "ADDs", func(r sbsRun) float64 { return float64(r.ChurnFailed) }},
		sbsRow{fmt.Sprintf("%d pods: ADD p50 (every attempt)", pods), "ms", func(r sbsRun) float64 { return ms(r.Add.P50) }},
		sbsRow{fmt.Sprintf("%d pods: ADD p99 (every attempt)", pods), "ms", func(r sbsRun) float64 { return ms(r.Add.P99) }},
		sbsRow{fmt.Sprintf("%d pods: all done", pods), "s", func(r sbsRun) float64 { return r.AllDone.Seconds() }},
		sbsRow{fmt.Sprintf("%d pods: first attempts failed", pods), "ADDs", func(r sbsRun) float64 { return float64(r.FailedFirst) }},
	)
}

// sbsStat is one agent's values of a row, one per round, and their mean.
func sbsStat(runs []sbsRun, agent string, get func(sbsRun) float64) (vals []float64, mean float64) {
	for _, r := range runs {
		if r.Agent == agent {
			vals = append(vals, get(r))
			mean += get(r)
		}
	}
	if len(vals) > 0 {
		mean /= float64(len(vals))
	}
	return vals, mean
}

func fmtVals(vals []float64) string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = trimFloat(v)
	}
	return strings.Join(s, " / ")
}

func trimFloat(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}

// writeSBSTable prints the side-by-side table: each agent's value per
// round, and the ratio of the means (ours / compare).
func writeSBSTable(w io.Writer, runs []sbsRun, cfg sbsConfig) error {
	compare := cfg.Compare != nil
	if compare {
		fmt.Fprintf(w, "\nSide by side (issue 17 scenario), %d rounds interleaved; compare: ipamd %s, plugin %s\n", cfg.Rounds, cfg.Compare.IPAMD, cfg.Compare.Plugin)
	} else {
		fmt.Fprintf(w, "\nSide by side (issue 17 scenario), %d rounds: OURS ALONE (no COMPARE_IPAMD/COMPARE_PLUGIN given, so no ratio)\n", cfg.Rounds)
	}
	fmt.Fprintf(w, "one m5.xlarge, %s, %s; %d pods %s apart (failed ADDs retried after %s), delete all, churn %d live pods, one DEL or ADD in turn every %s for %s\n\n",
		strings.Join(sbsEnv, " "), "realistic EC2 timing", cfg.Pods, cfg.Spacing, cfg.Retry, cfg.ChurnLive, cfg.ChurnEvery, cfg.Churn)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if compare {
		fmt.Fprintln(tw, "figure\tours (per round)\tcompare (per round)\tratio ours/compare\tunit")
	} else {
		fmt.Fprintln(tw, "figure\tours (per round)\tunit")
	}
	for _, row := range sbsRows(runs, cfg.Pods) {
		ov, om := sbsStat(runs, "ours", row.get)
		if !compare {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", row.name, fmtVals(ov), row.unit)
			continue
		}
		cv, cm := sbsStat(runs, "compare", row.get)
		ratio := "-"
		if cm != 0 {
			ratio = fmt.Sprintf("%.2f", om/cm)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", row.name, fmtVals(ov), fmtVals(cv), ratio, row.unit)
	}
	return tw.Flush()
}

// sbsFigure is the side-by-side table as a results.json figure: for every
// row "ours <row>" and, with a compare agent, "compare <row>" and
// "ratio <row>" (means over the rounds).
func sbsFigure(runs []sbsRun, cfg sbsConfig, err error) bench.Figure {
	f := bench.Figure{ID: sbsFigureID, Key: keySideBySide, Title: "side by side: EC2 calls, idle addresses and ADD latency against a supplied agent",
		Method: fmt.Sprintf("Issue 17's scenario on a fresh local VPC per run (one m5.xlarge, %s, realistic EC2 timing): settle, %d pods %s apart "+
			"(failed ADDs retried after %s), delete all, then %d live pods with one DEL or ADD in turn every %s for %s. Ours and the supplied "+
			"COMPARE_IPAMD/COMPARE_PLUGIN run interleaved, %d rounds; values are means over the rounds, ratios ours/compare.",
			strings.Join(sbsEnv, " "), cfg.Pods, cfg.Spacing, cfg.Retry, cfg.ChurnLive, cfg.ChurnEvery, cfg.Churn, cfg.Rounds)}
	if cfg.Compare == nil {
		f.Method += " No compare binaries were given: ours alone."
	}
	if err != nil {
		f.Error = err.Error()
		return f
	}
	for _, row := range sbsRows(runs, cfg.Pods) {
		name := strings.TrimSpace(row.name)
		_, om := sbsStat(runs, "ours", row.get)
		f.Values = append(f.Values, bench.Value{Name: "ours " + name, Value: om, Unit: row.unit})
		if cfg.Compare == nil {
			continue
		}
		_, cm := sbsStat(runs, "compare", row.get)
		f.Values = append(f.Values, bench.Value{Name: "compare " + name, Value: cm, Unit: row.unit})
		if cm != 0 {
			f.Values = append(f.Values, bench.Value{Name: "ratio " + name, Value: om / cm, Unit: "x"})
		}
	}
	return f
}
