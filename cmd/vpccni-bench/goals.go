package main

import (
	"fmt"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
)

// mb12 is issue 15's "12 MB" of anonymous memory, in the MiB the figure
// reports.
const mb12 = 12e6 / (1 << 20)

// applyGoals sets issue 15's goals on the figures' values (bench/README.md,
// "Goals"). Limits taken from another figure of the same run (the floor,
// the static algorithm, the compare agent) are only set when that figure
// was measured. A phase may also set a goal on its own values; those are
// left alone.
func applyGoals(figs []bench.Figure, c config) {
	byKey := map[string]*bench.Figure{}
	for i := range figs {
		if figs[i].Error == "" {
			byKey[figs[i].Key] = &figs[i]
		}
	}
	get := func(key, name string) (bench.Value, bool) {
		if f, ok := byKey[key]; ok {
			return f.Get(name)
		}
		return bench.Value{}, false
	}
	set := func(key, name string, g *bench.Goal) {
		if f, ok := byKey[key]; ok {
			f.SetGoal(name, g)
		}
	}
	// 1: ADD near the kernel floor of figure 11, DEL no slower than ADD.
	if fl, ok := get(keyFloor, "ADD p50"); ok {
		set(keyLatency, "aws-cni ADD p50", bench.AtMost(1.3*fl.Value, "≤ 1.3 × floor ADD p50 (%s)", bench.FormatValue(fl)))
	}
	if fl, ok := get(keyFloor, "ADD p99"); ok {
		set(keyLatency, "aws-cni ADD p99", bench.AtMost(2*fl.Value, "≤ 2 × floor ADD p99 (%s)", bench.FormatValue(fl)))
	}
	if add, ok := get(keyLatency, "aws-cni ADD p50"); ok {
		set(keyLatency, "aws-cni DEL p50", bench.AtMost(add.Value, "≤ aws-cni ADD p50"))
	}
	if add, ok := get(keyLatency, "ADD p50"); ok {
		set(keyLatency, "DEL p50", bench.AtMost(add.Value, "≤ ADD p50"))
	}
	// 2 and 13: churn, in secondary-IP mode and with prefix delegation.
	for _, k := range []string{keyChurn, keyChurnPD} {
		set(k, "DEL+ADD pairs per second", bench.AtLeast(50, "≥ 50 pairs/s"))
		set(k, "ADD p99", bench.AtMost(100, "≤ 100 ms"))
	}
	// 4 and 12: bursts on fresh nodes.
	set(keyBurst, "first attempts failed", bench.AtMost(0, "0"))
	set(keyBurst, "ADD p99", bench.AtMost(3000, "≤ 3 s"))
	set(keyBurstPD, "ADD p99", bench.AtMost(5000, "≤ 5 s"))
	// 6: idle addresses under churn against the static algorithm.
	if st, ok := get(keyIdle, "mean during churn, static algorithm (model)"); ok {
		set(keyIdle, fmt.Sprintf("mean during churn at %d pods", c.ChurnLive),
			bench.AtMost(st.Value/3, "≤ 1/3 × static algorithm (%s)", bench.FormatValue(st)))
	}
	// 21: the checkpoint's share of AddNetwork.
	set(keyCkpt, "AddNetwork p99", bench.AtMost(2, "≤ 2 ms"))
	// 7: memory at 110 pods; against the compare agent only side by side.
	at := fmt.Sprintf("%d pods: ", c.MemPods)
	set(keyMemory, at+"ipamd RssAnon", bench.AtMost(mb12, "≤ 12 MB"))
	if v, ok := get(keyMemory, at+"ipamd + installer VmRSS"); ok && v.Compare != nil {
		set(keyMemory, at+"ipamd + installer VmRSS", bench.AtMost(0.6**v.Compare, "≤ 0.6 × compare agent's"))
	}
}
