package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// config is one bench run's sizes and surroundings.
type config struct {
	BinDir  string // binaries as localvpc expects them (see prepareBinDir)
	RepoDir string // module root, for `go test -bench`
	WorkDir string // where the local VPC's run directory goes ("" = os.TempDir())
	Agent   string // "installer" or "ipamd" (see prepareBinDir)
	Quick   bool

	Pods      int // figure 1: pods created and deleted through CNI
	Batch     int // figure 1: pods alive at once
	WarmIPs   int // figure 1: WARM_IP_TARGET of the warm node
	Versions  int // figure 1: VERSION calls for the exec baseline
	MemPods   int // figure 7: pods for the second memory reading
	BurstPods int // figure 4: pods arriving at once on a fresh node
	// figure 12: the same on an m5.4xlarge with prefix delegation
	BurstPDPods int

	ChurnLive    int           // figure 2: live pods during churn
	ChurnWorkers int           // figure 2: concurrent DEL+ADD loops
	Churn        time.Duration // figure 2: length of the measured churn
	Stages       []stage       // the churn node's demand over time (the plot)
	SampleEvery  time.Duration // plot resolution

	GoBenchTime string // -benchtime for figure 9 ("" skips figure 9)

	// FloorBin is the kernel floor binary (cmd/vpccni-bench/floor) for
	// figure 11; "" or missing: figure 11 not measured.
	FloorBin string
	// Compare is a supplied agent measured beside ours on identical nodes
	// (figures 1-8, 11-13); nil: ours alone.
	Compare *localvpc.AgentBinaries
	// Only, if not 0, measures just that figure (and whatever its phase
	// measures with it).
	Only int
	// Kube runs the warm node's ipamd against a real kube-apiserver
	// (figure 7's caches) when VPC_CNI_KUBE_APISERVER and VPC_CNI_ETCD name one.
	Kube bool

	// NodeLogs, if set, is where the nodes' logs are copied before the
	// local VPC is removed, whether or not a figure failed.
	NodeLogs string

	Log      *slog.Logger
	Progress io.Writer
	// OnVPC, if set, is called with the local VPC once it runs (tests use
	// it to check that everything is removed afterwards).
	OnVPC func(*localvpc.VPC)
}

// stage is a step of the churn node's demand: scale to Pods, then either
// churn (figure 2) or hold for Hold.
type stage struct {
	Label string
	Pods  int
	Hold  time.Duration
	Churn bool
}

func defaultConfig(quick bool, pods int, churn time.Duration) config {
	c := config{
		Quick: quick, Pods: pods, Batch: 50, WarmIPs: 64, Versions: 200, MemPods: 110, BurstPods: 30, BurstPDPods: 110,
		ChurnLive: 40, ChurnWorkers: 3, Churn: churn, SampleEvery: 250 * time.Millisecond,
		GoBenchTime: "20000x",
	}
	c.Stages = []stage{
		{Label: "20 pods", Pods: 20, Hold: 10 * time.Second},
		{Label: fmt.Sprintf("churn at %d pods", c.ChurnLive), Pods: c.ChurnLive, Churn: true},
		{Label: "100 pods", Pods: 100, Hold: 10 * time.Second},
		{Label: "10 pods", Pods: 10, Hold: 40 * time.Second},
	}
	if quick {
		c.Batch, c.WarmIPs, c.MemPods, c.BurstPods, c.BurstPDPods, c.Versions = 10, 16, 20, 12, 20, 10
		c.ChurnLive, c.ChurnWorkers, c.SampleEvery, c.GoBenchTime = 8, 2, 100*time.Millisecond, "2000x"
		c.Stages = []stage{
			{Label: "4 pods", Pods: 4, Hold: 2 * time.Second},
			{Label: fmt.Sprintf("churn at %d pods", c.ChurnLive), Pods: c.ChurnLive, Churn: true},
			{Label: "16 pods", Pods: 16, Hold: 2 * time.Second},
			{Label: "2 pods", Pods: 2, Hold: 3 * time.Second},
		}
	}
	return c
}

// Figure keys, in the order of bench/README.md, "How each figure is measured".
const (
	keyLatency   = "cni_add_del_latency_warm"
	keyChurn     = "pod_churn_rate"
	keyStart     = "node_start_to_first_pod"
	keyBurst     = "cold_node_burst"
	keyBurstPD   = "cold_node_burst_prefix_delegation"
	keyChurnPD   = "pod_churn_rate_prefix_delegation"
	keyEC2       = "ec2_calls_per_100_pods"
	keyIdle      = "idle_addresses_per_node"
	keyMemory    = "ipamd_rss"
	keyRestart   = "restart_to_ready"
	keyDatastore = "datastore_assign_unassign"
)

// run is one bench run against one local VPC.
type run struct {
	cfg   config
	v     *localvpc.VPC
	seq   atomic.Int64
	start time.Time
	// side is whose figures the running phase measures; set by measure
	// between phases.
	side side

	mu      sync.Mutex
	figures map[string]bench.Figure // ours
	compare map[string]bench.Figure // the compare agent's
	pool    *bench.PoolSeries
}

func (r *run) progressf(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "[%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
	}
}

func (r *run) put(f bench.Figure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.side.bins != nil {
		r.compare[f.Key] = f
		return
	}
	r.figures[f.Key] = f
}

// fail records figure f as not measured because of err.
func (r *run) fail(f bench.Figure, err error) {
	f.Values = nil
	f.Error = err.Error()
	r.put(f)
	r.progressf("figure %d (%s) NOT MEASURED for %s: %v", f.ID, f.Title, r.side.name, err)
}

// phase measures some figures; vpc phases run in the local VPC, once per
// side.
type phase struct {
	figures []bench.Figure
	run     func(context.Context)
	vpc     bool
}

// phases lists the bench's phases in the order they run.
func (r *run) phases() []phase {
	c := r.cfg
	return []phase{
		{[]bench.Figure{startFigure(c)}, r.phaseFresh, true},
		{[]bench.Figure{latencyFigure(c), floorFigure(c), memoryFigure(c), restartFigure(c)}, r.phaseWarm, true},
		{[]bench.Figure{churnFigure(c), ec2Figure(c), idleFigure(c)}, r.phaseChurn, true},
		{[]bench.Figure{burstFigure(c)}, r.phaseBurst, true},
		{[]bench.Figure{burstPDFigure(c)}, r.phaseBurstPD, true},
		{[]bench.Figure{churnPDFigure(c)}, r.phaseChurnPD, true},
		{[]bench.Figure{ckptFigure(c)}, r.phaseCkpt, true},
		{[]bench.Figure{datastoreFigure()}, r.phaseDatastore, false},
		{[]bench.Figure{sgpFigure()}, r.phaseSGP, false},
	}
}

// selected reports whether a phase measures the figure asked for (all do
// when no single figure is asked for).
func (p phase) selected(only int) bool {
	if only == 0 {
		return true
	}
	for _, f := range p.figures {
		if f.ID == only {
			return true
		}
	}
	return false
}

// measure runs every phase (or the one measuring cfg.Only) and returns
// the results. A phase that fails marks its figures as not measured; the
// others still run. Everything the run created is removed before it
// returns.
func measure(ctx context.Context, cfg config) (*bench.Results, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r := &run{cfg: cfg, start: time.Now(), side: ours, figures: map[string]bench.Figure{}, compare: map[string]bench.Figure{}}
	res := &bench.Results{Schema: bench.Schema, Started: r.start.UTC(), Quick: cfg.Quick, Host: host()}
	sides := []side{ours}
	if cfg.Compare != nil {
		sides = append(sides, side{name: "compare", bins: cfg.Compare})
		res.CompareAgent = cfg.Compare.IPAMD + " + " + cfg.Compare.Plugin
	}
	var selected []phase
	needVPC := false
	for _, p := range r.phases() {
		if p.selected(cfg.Only) {
			selected = append(selected, p)
			needVPC = needVPC || p.vpc
		}
	}
	if len(selected) == 0 {
		return nil, fmt.Errorf("no phase measures figure %d", cfg.Only)
	}
	if needVPC {
		r.inVPC(ctx, selected, sides)
	}
	for _, p := range selected {
		if !p.vpc && ctx.Err() == nil {
			p.run(ctx)
		}
	}
	for _, p := range selected {
		for _, f := range p.figures {
			if _, ok := r.figures[f.Key]; !ok {
				cause := ctx.Err()
				if cause == nil {
					cause = errors.New("phase did not run")
				}
				r.fail(f, fmt.Errorf("not reached: %w", cause))
			}
			if _, ok := r.compare[f.Key]; !ok && cfg.Compare != nil && p.vpc {
				r.compare[f.Key] = bench.Figure{Key: f.Key, Error: "not reached for the compare agent"}
			}
		}
	}
	for _, f := range r.figures {
		res.Figures = append(res.Figures, f)
	}
	sort.Slice(res.Figures, func(i, j int) bool { return res.Figures[i].ID < res.Figures[j].ID })
	mergeSides(res.Figures, r.compare)
	applyGoals(res.Figures, cfg)
	res.Pool = r.pool
	res.ElapsedSeconds = time.Since(r.start).Seconds()
	res.Host.Load[1] = loadAverage()
	return res, ctx.Err()
}

// inVPC starts the local VPC and runs the selected VPC phases in it, each
// for every side in turn; it removes the VPC before returning.
func (r *run) inVPC(ctx context.Context, selected []phase, sides []side) {
	cfg := r.cfg
	if removed, err := localvpc.CleanupStale(cfg.WorkDir); err != nil {
		cfg.Log.Warn("cleaning up earlier runs", "err", err)
	} else if len(removed) > 0 {
		r.progressf("removed leftovers of crashed runs: %s", strings.Join(removed, ", "))
	}
	sc := scenario(len(sides) > 1)
	r.progressf("starting the local VPC (%d nodes)", len(sc.Instances))
	v, err := localvpc.Start(ctx, localvpc.Config{Scenario: sc, BinDir: cfg.BinDir, WorkDir: cfg.WorkDir, Logger: cfg.Log})
	if err != nil {
		err = fmt.Errorf("local VPC: %w", err)
		for _, p := range selected {
			for _, f := range p.figures {
				if p.vpc {
					r.fail(f, err)
				}
			}
		}
		return
	}
	r.v = v
	if cfg.OnVPC != nil {
		cfg.OnVPC(v)
	}
	defer func() {
		r.side = ours
		r.saveLogsOnFailure()
		r.progressf("removing the local VPC")
		if cerr := v.Close(); cerr != nil {
			cfg.Log.Error("closing the local VPC", "err", cerr)
			fmt.Fprintf(os.Stderr, "vpccni-bench: cleanup: %v\n", cerr)
		}
	}()
	for _, p := range selected {
		for _, s := range sides {
			if !p.vpc || ctx.Err() != nil {
				break
			}
			r.side = s
			if len(sides) > 1 {
				r.progressf("-- %s --", s)
			}
			p.run(ctx)
		}
	}
	r.side = ours
}

// saveLogsOnFailure copies the nodes' logs out of the run directory (which
// Close removes) when a figure could not be measured, or always to
// config.NodeLogs when that is set.
func (r *run) saveLogsOnFailure() {
	r.mu.Lock()
	failed := false
	for _, f := range r.figures {
		failed = failed || f.Error != ""
	}
	r.mu.Unlock()
	dir, why := r.cfg.NodeLogs, "as asked"
	if dir == "" {
		if !failed {
			return
		}
		dir, why = filepath.Join(os.TempDir(), "vpccni-bench-logs-"+r.v.RunID), "a figure was not measured"
	}
	if err := r.v.SaveLogs(dir); err != nil {
		r.cfg.Log.Warn("saving node logs", "err", err)
	}
	r.progressf("%s; the nodes' logs are in %s", why, dir)
}

// startAgent starts a node's ipamd and waits until it serves and the node
// is ready (conflist written). It returns when ipamd was started and when
// it first reported SERVING.
func (r *run) startAgent(ctx context.Context, n *localvpc.Node, env []string) (started, serving time.Time, err error) {
	started = time.Now()
	if err := r.launch(ctx, n, env); err != nil {
		return started, serving, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitServing(wctx, n); err != nil {
		return started, serving, err
	}
	serving = time.Now()
	// The node is ready when its conflist is written: by the installer,
	// or by localvpc when ipamd runs alone.
	if err := r.waitReady(wctx, n); err != nil {
		return started, serving, err
	}
	return started, serving, nil
}

// stopAgent stops a node's agent as the kubelet would (SIGTERM, then
// SIGKILL after 10 s), so the next phase runs alone.
func (r *run) stopAgent(n *localvpc.Node) {
	if err := r.v.StopAgent(n, syscall.SIGTERM, 10*time.Second); err != nil {
		r.cfg.Log.Warn("stopping agent", "node", n.Name, "err", err)
	}
}

// deleteAll deletes pods through CNI (best effort: cleanup after a
// phase). When the run is cancelled it does nothing: the VPC's Close
// removes pods with their node much faster.
func deleteAll(ctx context.Context, rt *podRuntime, pods []*pod) {
	if ctx.Err() != nil {
		return
	}
	for _, p := range pods {
		_, _ = rt.del(ctx, p) // the VPC's Close removes what is left
	}
}

func host() bench.Host {
	h := bench.Host{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Load: [2]float64{loadAverage()}}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		h.Kernel = utsString(u.Release[:])
	}
	return h
}

// loadAverage is the 1-minute load average (0 if unreadable).
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	if _, err := fmt.Sscanf(string(data), "%f", &l); err != nil {
		return 0
	}
	return l
}

func utsString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// ec2Delta is what happened to EC2 between two Stats snapshots.
func ec2Delta(before, after vpcsim.Stats) (calls map[string]int64, throttled int64) {
	calls = map[string]int64{}
	for a, n := range after.Calls {
		if d := n - before.Calls[a]; d > 0 {
			calls[a] = d
		}
	}
	for a, n := range after.Throttled {
		throttled += n - before.Throttled[a]
	}
	return calls, throttled
}

func sumCalls(m map[string]int64) int64 {
	var s int64
	for _, n := range m {
		s += n
	}
	return s
}
