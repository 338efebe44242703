package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// buildBinaries builds the agent (aws-vpc-cni, ipamd) and the plugin for
// the local VPC, or uses $VPC_CNI_BENCH_BIN (a `make build` bin/) when set.
func buildBinaries(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("VPC_CNI_BENCH_BIN"); dir != "" {
		return dir
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/vpc-cni/vpc-cni/cmd/aws-vpc-cni", "github.com/vpc-cni/vpc-cni/cmd/ipamd")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The plugin with make build's flags.
	cmd = exec.Command("go", append([]string{"build", "-o", dir + "/"}, agentbin.PluginBuildArgs...)...)
	cmd.Dir = agentbin.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build aws-cni: %v\n%s", err, out)
	}
	buildFloor(t, dir)
	return dir
}

// buildFloor builds the kernel floor binary into dir/floor, as
// scripts/bench.sh does, unless it is there already.
func buildFloor(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "floor")); err == nil {
		return
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "floor"), "./cmd/vpccni-bench/floor")
	cmd.Dir = agentbin.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build floor: %v\n%s", err, out)
	}
}

// TestPrivilegedBenchQuick runs the whole orchestration with tiny sizes
// and checks that every figure is there and makes sense, that the plot
// draws, and that nothing of the local VPC is left.
func TestPrivilegedBenchQuick(t *testing.T) {
	testutil.Privileged(t)
	if _, err := os.Stat(filepath.Join(localvpc.DefaultRefPluginDir, "portmap")); err != nil {
		t.Skipf("reference CNI plugins missing (%v): apt-get install containernetworking-plugins", err)
	}
	bin := buildBinaries(t)
	binDir, cleanup, err := prepareBinDir(bin, "installer")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig(true, 20, 4*time.Second) // churns short of the cooling cap (noFailedChurnBelowCap)
	cfg.GoBenchTime = "100x"
	var progress bytes.Buffer
	var vpc *localvpc.VPC
	cfg.BinDir, cfg.RepoDir, cfg.Agent, cfg.Progress = binDir, repo, "installer", &progress
	cfg.FloorBin, cfg.Kube = filepath.Join(bin, "floor"), true
	cfg.OnVPC = func(v *localvpc.VPC) { vpc = v }
	// measure takes ~2 min at load ~14 on 2 cores (its Go benchmark builds
	// too): a loaded CI machine gets three times that.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	res, err := measure(ctx, cfg)
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("measure: %v", err)
	}
	if vpc == nil {
		t.Fatal("the local VPC never started")
	}
	if left, _ := dataplane.ListNamespaces(dataplane.RunPrefix(vpc.RunID)); len(left) > 0 {
		t.Errorf("namespaces left after the bench: %v", left)
	}
	if _, err := os.Stat(vpc.Dir); err == nil {
		t.Errorf("run directory %s left after the bench", vpc.Dir)
	}
	if err := res.Validate(); err != nil {
		t.Errorf("results do not validate: %v", err)
	}
	var table bytes.Buffer
	if err := bench.WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	t.Logf("table:\n%s", table.String())

	c := checker{t: t, res: res}
	// 1: every pod ADDed and DELed, ordered percentiles.
	c.eq(keyLatency, "ADD n", 20)
	c.eq(keyLatency, "DEL n", 20)
	c.eq(keyLatency, "failed ADDs", 0)
	c.eq(keyLatency, "failed DELs", 0)
	c.ordered(keyLatency, "ADD p50", "ADD p99", "ADD max")
	c.ordered(keyLatency, "DEL p50", "DEL p99", "DEL max")
	c.positive(keyLatency, "ADD p50", "DEL p50", "aws-cni VERSION p50")
	// aws-cni's own exec is part of the chain's ADD; the floor was
	// measured beside it and figure 1's goals are set from it.
	c.eq(keyLatency, "aws-cni ADD n", 20)
	c.ordered(keyLatency, "aws-cni ADD p50", "ADD p50")
	c.eq(keyFloor, "ADD n", 20)
	c.eq(keyFloor, "DEL n", 20)
	c.positive(keyFloor, "ADD p50", "DEL p50")
	c.hasGoal(keyLatency, "aws-cni ADD p50", "aws-cni ADD p99", "aws-cni DEL p50", "DEL p50")
	// 2 and 5: churn happened and its calls add up.
	c.positive(keyChurn, "DEL+ADD pairs per second", "pods churned")
	c.noFailedChurnBelowCap(keyChurn, nodeTypes[nodeChurn], cfg.ChurnLive, false)
	c.totalIsSum(keyEC2)
	// 3: the milestones come in order.
	c.positive(keyStart, "to ipamd SERVING")
	c.ordered(keyStart, "to ipamd SERVING", "to node ready", "to first pod address")
	// 4: every pod of the burst got an address (ADD waits for the pool).
	c.eq(keyBurst, "ADD n", float64(cfg.BurstPods))
	c.eq(keyBurst, "ADDs failed in the end", 0)
	c.eq(keyBurst, "first attempts failed", 0)
	c.ordered(keyBurst, "start to ready", "start to first pod address", "start to last pod address")
	c.hasGoal(keyBurst, "ADD p99", "first attempts failed")
	// 12: the prefix-delegation burst too.
	c.eq(keyBurstPD, "ADD n", float64(cfg.BurstPDPods))
	c.eq(keyBurstPD, "ADDs failed in the end", 0)
	c.eq(keyBurstPD, "first attempts failed", 0)
	c.hasGoal(keyBurstPD, "ADD p99")
	// 13: churn with prefix delegation: pairs done without a failure, the
	// addresses held on EC2 in prefixes, and issue 15's churn goals on it.
	c.positive(keyChurnPD, "DEL+ADD pairs per second", "pods churned", "addresses held after churn")
	// The pool never passes its cap (what the ENIs hold; max pods bounds only the addresses held for pods).
	cp, _ := churnCapFor(nodeTypes[nodeChurnPD], cfg.ChurnLive, true)
	c.between(keyChurnPD, "addresses held after churn", float64(cfg.ChurnLive), float64(cp.Held))
	c.noFailedChurnBelowCap(keyChurnPD, nodeTypes[nodeChurnPD], cfg.ChurnLive, true)
	c.eq(keyChurnPD, "live pods", float64(cfg.ChurnLive))
	c.ordered(keyChurnPD, "ADD p50", "ADD p99")
	c.hasGoal(keyChurnPD, "DEL+ADD pairs per second", "ADD p99")
	c.between(keyChurnPD, "cap: (held − live) / cooldown", 0.1, 8*29*16)
	// 6: default targets keep a spare ENI's worth at 0 pods (29 on m5.4xlarge).
	c.between(keyIdle, "0 pods", 1, 232)
	c.positive(keyIdle, "mean during churn, static algorithm (model)")
	c.hasGoal(keyIdle, fmt.Sprintf("mean during churn at %d pods", cfg.ChurnLive))
	c.hasGoal(keyChurn, "DEL+ADD pairs per second", "ADD p99")
	// 7: a plausible Go daemon, its memory split, the installer's beside it.
	at := fmt.Sprintf("%d pods: ", cfg.MemPods)
	c.between(keyMemory, "0 pods: ipamd VmRSS", 5, 500)
	c.between(keyMemory, at+"ipamd VmRSS", 5, 500)
	c.between(keyMemory, at+"ipamd RssAnon", 1, 500)
	c.between(keyMemory, at+"ipamd RssFile", 1, 500)
	c.positive(keyMemory, "ipamd binary", "plugin binary (aws-cni)", "installer binary (aws-vpc-cni)")
	c.hasGoal(keyMemory, at+"ipamd RssAnon")
	// 8: nothing lost across either restart.
	c.eq(keyRestart, "SIGTERM: pods kept address", float64(cfg.MemPods))
	c.eq(keyRestart, "SIGKILL: pods kept address", float64(cfg.MemPods+1))
	c.ordered(keyRestart, "SIGTERM: to SERVING", "SIGTERM: to first ADD")
	c.ordered(keyRestart, "SIGKILL: to SERVING", "SIGKILL: to first ADD")
	// 9: every pool size measured.
	c.positive(keyDatastore, "secondary-ipv4, 16 addresses", "secondary-ipv4, 4096 addresses", "prefix-ipv4, 4096 addresses")
	// 21: every call of the clients measured, on a disk.
	c.eq(keyCkpt, "AddNetwork n", float64(ckptClients*ckptRounds(true)))
	c.ordered(keyCkpt, "AddNetwork p50", "AddNetwork p99", "AddNetwork max")

	// The plot's data: one mark per stage, EC2 always holds the pods'
	// addresses, and the SVG draws.
	p := res.Pool
	if p == nil {
		t.Fatal("no pool series")
	}
	if len(p.Samples) < 20 || len(p.Marks) != len(cfg.Stages) {
		t.Errorf("pool series: %d samples, %d marks; want >= 20 and %d", len(p.Samples), len(p.Marks), len(cfg.Stages))
	}
	for _, s := range p.Samples {
		if s.Held < s.InUse {
			t.Errorf("at %.2fs EC2 held %d addresses for %d pods", s.T, s.Held, s.InUse)
			break
		}
	}
	var svg bytes.Buffer
	if err := bench.WritePoolSVG(&svg, *p); err != nil {
		t.Errorf("plot: %v", err)
	}
}

// noFailedChurnBelowCap checks that a churn figure had no failed ADD or
// DEL unless the churn used every address the node can hold (each pair
// leaves one cooling for 30 s, longer than the quick churn): then an ADD
// may rightly find none.
func (c checker) noFailedChurnBelowCap(key, instanceType string, live int, pd bool) {
	c.t.Helper()
	cp, ok := churnCapFor(instanceType, live, pd)
	if !ok {
		c.t.Errorf("no churn cap for %s", instanceType)
		return
	}
	if pairs, ok := c.get(key, "pods churned"); ok && int(pairs)+live < cp.Held {
		c.eq(key, "failed ADDs or DELs", 0)
		c.eq(key, "first attempts failed", 0)
	}
}

type checker struct {
	t   *testing.T
	res *bench.Results
}

func (c checker) get(key, name string) (float64, bool) {
	c.t.Helper()
	f, ok := c.res.Figure(key)
	if !ok {
		c.t.Errorf("figure %s missing", key)
		return 0, false
	}
	if f.Error != "" {
		c.t.Errorf("figure %s not measured: %s", key, f.Error)
		return 0, false
	}
	v, ok := f.Get(name)
	if !ok {
		c.t.Errorf("figure %s has no value %q (has %v)", key, name, f.Values)
		return 0, false
	}
	return v.Value, true
}

func (c checker) hasGoal(key string, names ...string) {
	c.t.Helper()
	f, _ := c.res.Figure(key)
	for _, n := range names {
		if v, ok := f.Get(n); ok && v.Goal == nil {
			c.t.Errorf("%s %q has no goal", key, n)
		} else if !ok {
			c.t.Errorf("%s has no value %q", key, n)
		}
	}
}

func (c checker) eq(key, name string, want float64) {
	c.t.Helper()
	if v, ok := c.get(key, name); ok && v != want {
		c.t.Errorf("%s %q = %v, want %v", key, name, v, want)
	}
}

func (c checker) positive(key string, names ...string) {
	c.t.Helper()
	for _, n := range names {
		if v, ok := c.get(key, n); ok && v <= 0 {
			c.t.Errorf("%s %q = %v, want > 0", key, n, v)
		}
	}
}

func (c checker) between(key, name string, lo, hi float64) {
	c.t.Helper()
	if v, ok := c.get(key, name); ok && (v < lo || v > hi) {
		c.t.Errorf("%s %q = %v, want %v..%v", key, name, v, lo, hi)
	}
}

// ordered checks the named values do not decrease.
func (c checker) ordered(key string, names ...string) {
	c.t.Helper()
	prev, prevName := -1.0, ""
	for _, n := range names {
		v, ok := c.get(key, n)
		if !ok {
			return
		}
		if v < prev {
			c.t.Errorf("%s: %q = %v is below %q = %v", key, n, v, prevName, prev)
		}
		prev, prevName = v, n
	}
}

func (c checker) totalIsSum(key string) {
	c.t.Helper()
	f, ok := c.res.Figure(key)
	if !ok || f.Error != "" {
		c.t.Errorf("figure %s missing or not measured: %+v", key, f)
		return
	}
	var sum, total float64
	for _, v := range f.Values {
		switch {
		case v.Name == "total":
			total = v.Value
		case v.Name != "throttled" && !strings.HasPrefix(v.Name, "("):
			sum += v.Value
		}
	}
	if d := sum - total; d > 1e-6 || d < -1e-6 {
		c.t.Errorf("%s: actions add up to %v, total says %v", key, sum, total)
	}
}

// TestPrivilegedBenchCompareQuick runs the warm node's figures (1, 7, 8,
// 11) side by side, with copies of our own binaries under other names as
// the compare agent ("bring your own agent"), and checks that every value
// got its compare counterpart and ratio and that the goal set from the
// compare agent appears.
func TestPrivilegedBenchCompareQuick(t *testing.T) {
	testutil.Privileged(t)
	if _, err := os.Stat(filepath.Join(localvpc.DefaultRefPluginDir, "portmap")); err != nil {
		t.Skipf("reference CNI plugins missing (%v): apt-get install containernetworking-plugins", err)
	}
	bin := buildBinaries(t)
	other := t.TempDir()
	cmp := localvpc.AgentBinaries{IPAMD: filepath.Join(other, "vpccni-other-ipamd"), Plugin: filepath.Join(other, "their-cni")}
	for src, dst := range map[string]string{filepath.Join(bin, "ipamd"): cmp.IPAMD, filepath.Join(bin, "aws-cni"): cmp.Plugin} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	binDir, cleanup, err := prepareBinDir(bin, "installer")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	cfg := defaultConfig(true, 10, 6*time.Second)
	var progress bytes.Buffer
	var vpc *localvpc.VPC
	cfg.BinDir, cfg.Agent, cfg.Progress, cfg.FloorBin = binDir, "installer", &progress, filepath.Join(bin, "floor")
	cfg.Compare, cfg.Only = &cmp, 7
	cfg.OnVPC = func(v *localvpc.VPC) { vpc = v }
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	res, err := measure(ctx, cfg)
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("measure: %v", err)
	}
	if vpc == nil {
		t.Fatal("the local VPC never started")
	}
	if left, _ := dataplane.ListNamespaces(dataplane.RunPrefix(vpc.RunID)); len(left) > 0 {
		t.Errorf("namespaces left after the bench: %v", left)
	}
	if err := res.Validate(); err != nil {
		t.Errorf("results do not validate: %v", err)
	}
	var table bytes.Buffer
	if err := bench.WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	t.Logf("table:\n%s", table.String())
	if !strings.Contains(table.String(), "ours/compare") {
		t.Error("the table has no ratio column")
	}
	// Only the warm node's phase ran.
	keys := map[string]bool{}
	for _, f := range res.Figures {
		keys[f.Key] = true
		if f.CompareError != "" {
			t.Errorf("figure %s: compare agent not measured: %s", f.Key, f.CompareError)
		}
	}
	for _, k := range []string{keyLatency, keyFloor, keyMemory, keyRestart} {
		if !keys[k] {
			t.Errorf("figure %s missing", k)
		}
	}
	if len(res.Figures) != 4 {
		t.Errorf("-figure 7 measured %d figures, want the warm phase's 4", len(res.Figures))
	}
	c := checker{t: t, res: res}
	at := fmt.Sprintf("%d pods: ", cfg.MemPods)
	for _, v := range []struct{ key, name string }{
		{keyLatency, "ADD p50"}, {keyLatency, "aws-cni ADD p50"}, {keyFloor, "ADD p50"},
		{keyMemory, at + "ipamd VmRSS"}, {keyMemory, at + "ipamd RssAnon"}, {keyMemory, "ipamd binary"},
		{keyRestart, "SIGKILL: to SERVING"},
	} {
		f, _ := res.Figure(v.key)
		val, ok := f.Get(v.name)
		if !ok || val.Compare == nil {
			t.Errorf("%s %q: no compare value (%+v)", v.key, v.name, val)
			continue
		}
		if r, ok := val.CompareRatio(); !ok || r <= 0 {
			t.Errorf("%s %q: ratio %v, %v", v.key, v.name, r, ok)
		}
	}
	// The same binaries: the same pods kept, the same binary size; the
	// compare agent has no installer, so the goal against it is set.
	c.eq(keyRestart, "SIGKILL: pods kept address", float64(cfg.MemPods+1))
	f, _ := res.Figure(keyRestart)
	if v, _ := f.Get("SIGKILL: pods kept address"); v.Compare == nil || *v.Compare != float64(cfg.MemPods+1) {
		t.Errorf("compare agent's SIGKILL restart kept %v pods, want %d", v.Compare, cfg.MemPods+1)
	}
	f, _ = res.Figure(keyMemory)
	if v, _ := f.Get("ipamd binary"); v.Compare == nil || *v.Compare != v.Value {
		t.Errorf("ipamd binary size: ours %v, compare %v; the same file", v.Value, v.Compare)
	}
	c.hasGoal(keyMemory, at+"ipamd + installer VmRSS")
}
