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

	ChurnLive    int           // figure 2: live pods during churn
	ChurnWorkers int           // figure 2: concurrent DEL+ADD loops
	Churn        time.Duration // figure 2: length of the measured churn
	Stages       []stage       // the churn node's demand over time (the plot)
	SampleEvery  time.Duration // plot resolution

	GoBenchTime string // -benchtime for figure 9 ("" skips figure 9)

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
		Quick: quick, Pods: pods, Batch: 50, WarmIPs: 64, Versions: 200, MemPods: 110, BurstPods: 30,
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
		c.Batch, c.WarmIPs, c.MemPods, c.BurstPods, c.Versions = 10, 16, 20, 12, 10
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

	mu      sync.Mutex
	figures map[string]bench.Figure
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
	r.figures[f.Key] = f
}

// fail records figure f as not measured because of err.
func (r *run) fail(f bench.Figure, err error) {
	f.Values = nil
	f.Error = err.Error()
	r.put(f)
	r.progressf("figure %d (%s) NOT MEASURED: %v", f.ID, f.Title, err)
}

// measure runs every phase and returns the results. A phase that fails
// marks its figures as not measured; the others still run. Everything the
// run created is removed before it returns.
func measure(ctx context.Context, cfg config) (*bench.Results, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	r := &run{cfg: cfg, start: time.Now(), figures: map[string]bench.Figure{}}
	res := &bench.Results{Schema: bench.Schema, Started: r.start.UTC(), Quick: cfg.Quick, Host: host()}

	if removed, err := localvpc.CleanupStale(cfg.WorkDir); err != nil {
		cfg.Log.Warn("cleaning up earlier runs", "err", err)
	} else if len(removed) > 0 {
		r.progressf("removed leftovers of crashed runs: %s", strings.Join(removed, ", "))
	}
	r.progressf("starting the local VPC (%d nodes)", len(scenario().Instances))
	v, err := localvpc.Start(ctx, localvpc.Config{Scenario: scenario(), BinDir: cfg.BinDir, WorkDir: cfg.WorkDir, Logger: cfg.Log})
	if err != nil {
		err = fmt.Errorf("local VPC: %w", err)
		for _, f := range allVPCFigures() {
			r.fail(f, err)
		}
	} else {
		r.v = v
		if cfg.OnVPC != nil {
			cfg.OnVPC(v)
		}
		defer func() {
			r.saveLogsOnFailure()
			r.progressf("removing the local VPC")
			if cerr := v.Close(); cerr != nil {
				cfg.Log.Error("closing the local VPC", "err", cerr)
				fmt.Fprintf(os.Stderr, "vpccni-bench: cleanup: %v\n", cerr)
			}
		}()
		for _, phase := range []func(context.Context){r.phaseFresh, r.phaseWarm, r.phaseChurn, r.phaseBurst, r.phaseCkpt} {
			if ctx.Err() != nil {
				break
			}
			phase(ctx)
		}
	}
	if ctx.Err() == nil {
		r.phaseDatastore(ctx)
	}
	if ctx.Err() == nil {
		r.phaseSGP(ctx)
	}
	for _, f := range append(allVPCFigures(), datastoreFigure(), sgpFigure()) {
		if _, ok := r.figures[f.Key]; !ok {
			cause := ctx.Err()
			if cause == nil {
				cause = errors.New("phase did not run")
			}
			r.fail(f, fmt.Errorf("not reached: %w", cause))
		}
	}
	for _, f := range r.figures {
		res.Figures = append(res.Figures, f)
	}
	sort.Slice(res.Figures, func(i, j int) bool { return res.Figures[i].ID < res.Figures[j].ID })
	res.Pool = r.pool
	res.ElapsedSeconds = time.Since(r.start).Seconds()
	res.Host.Load[1] = loadAverage()
	return res, ctx.Err()
}

// saveLogsOnFailure copies the nodes' logs out of the run directory (which
// Close removes) when a figure could not be measured.
func (r *run) saveLogsOnFailure() {
	r.mu.Lock()
	failed := false
	for _, f := range r.figures {
		failed = failed || f.Error != ""
	}
	r.mu.Unlock()
	if !failed {
		return
	}
	dir := filepath.Join(os.TempDir(), "vpccni-bench-logs-"+r.v.RunID)
	if err := r.v.SaveLogs(dir); err != nil {
		r.cfg.Log.Warn("saving node logs", "err", err)
	}
	r.progressf("a figure was not measured; the nodes' logs are in %s", dir)
}

func allVPCFigures() []bench.Figure {
	return []bench.Figure{
		latencyFigure(config{}), churnFigure(config{}), startFigure(config{}), burstFigure(config{}),
		ec2Figure(config{}), idleFigure(config{}), memoryFigure(config{}), restartFigure(config{}), ckptFigure(config{}),
	}
}

// startAgent starts a node's ipamd and waits until it serves and the node
// is ready (conflist written). It returns when ipamd was started and when
// it first reported SERVING.
func (r *run) startAgent(ctx context.Context, n *localvpc.Node, env []string) (started, serving time.Time, err error) {
	started = time.Now()
	if err := r.v.StartAgent(ctx, n, env); err != nil {
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
	if err := r.v.WaitReady(wctx, n, nil); err != nil {
		return started, serving, err
	}
	return started, serving, nil
}

// stopAgent stops a node's agent as the kubelet would (SIGTERM, then
// SIGKILL after 10 s), so the next phase runs alone.
func (r *run) stopAgent(n *localvpc.Node) {
	if err := n.StopAgent(syscall.SIGTERM, 10*time.Second); err != nil {
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
