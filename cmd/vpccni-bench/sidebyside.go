package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// The side-by-side scenario (bench/README.md, "Side by side"): our agent
// and a supplied aws-node-compatible one on identical fresh nodes,
// interleaved, each round in a new local VPC.
type sbsConfig struct {
	Ours    localvpc.AgentBinaries
	Compare *localvpc.AgentBinaries // nil: ours alone

	Rounds     int
	Pods       int           // pods created Spacing apart
	Spacing    time.Duration // between pod creations
	Retry      time.Duration // a failed ADD is retried after this, as kubelet does
	ChurnLive  int           // live pods during churn
	ChurnEvery time.Duration // one operation (DEL or ADD, alternating) this often
	Churn      time.Duration // length of the churn
	// Settle: the pool unchanged this long counts as settled. It must
	// outlast a periodic agent's pool check plus an ENI attach (upstream's
	// checks every 5 s: with a 5 s quiet period its 30-pod figure was read
	// before the check that attaches the warm ENI).
	Settle    time.Duration
	SettleMax time.Duration
	// after deleting all pods, settled means unchanged for longer than an
	// agent takes to start releasing (30 s cooldown, ENIs younger than a
	// minute kept, 30 s between releases), so released ENIs show
	ReleaseQuiet, ReleaseMax time.Duration

	WorkDir string
	// NodeLogs, if set, receives every run's node logs (a directory per
	// round and agent); without it only a failed run's are kept, in
	// os.TempDir().
	NodeLogs string
	Log      *slog.Logger
	Progress io.Writer
	// OnVPC, if set, sees each run's local VPC (tests check it is removed).
	OnVPC func(*localvpc.VPC)
}

func defaultSBSConfig(quick bool) sbsConfig {
	c := sbsConfig{Rounds: 2, Pods: 30, Spacing: 200 * time.Millisecond, Retry: time.Second,
		ChurnLive: 20, ChurnEvery: 2 * time.Second, Churn: 60 * time.Second, Settle: 12 * time.Second, SettleMax: 90 * time.Second,
		ReleaseQuiet: 70 * time.Second, ReleaseMax: 5 * time.Minute}
	if quick {
		c.Rounds, c.Pods, c.ChurnLive, c.Churn, c.Settle, c.SettleMax = 1, 6, 4, 6*time.Second, 2*time.Second, 20*time.Second
		c.ReleaseQuiet, c.ReleaseMax = 2*time.Second, 20*time.Second
	}
	return c
}

// sbsEnv is the environment both agents get: the node's default targets
// with WARM_ENI_TARGET=1, and no API server (an ipamd that looks the node
// up in Kubernetes must manage ENIs regardless).
var sbsEnv = []string{"WARM_ENI_TARGET=1", "AWS_MANAGE_ENIS_NON_SCHEDULABLE=true"}

// sbsRun is one agent's figures from one round.
type sbsRun struct {
	Agent string
	Round int
	Calls map[string]int64
	Total int64
	// idle addresses: held by the node's ENIs and not used by a pod
	IdleSettled, IdleAt30, IdleAfterDelete int
	ChurnIdleMean                          float64
	ChurnIdleMax                           int
	ENIsDuringChurn                        int
	Add                                    bench.Latency
	AllDone                                time.Duration // first creation to last pod wired
	FailedFirst                            int           // first ADD attempts that failed
	ChurnFailed                            int
}

func sbsScenario() vpcsim.Scenario {
	sc := scenario(false)
	sc.Instances = nil
	sc.Instances = append(sc.Instances, vpcsim.InstanceSpec{
		ID: "i-00000000000000c01", Type: "m5.xlarge", Subnet: "subnet-00000000000000b01",
		SecurityGroups: []string{"sg-00000000000000b01"}, Tags: map[string]string{"Name": "side-by-side"},
	})
	return sc
}

// sideBySide runs the scenario for ours and the compare agent, interleaved,
// cfg.Rounds times.
func sideBySide(ctx context.Context, cfg sbsConfig) ([]sbsRun, error) {
	type agent struct {
		name string
		bins localvpc.AgentBinaries
	}
	agents := []agent{{"ours", cfg.Ours}}
	if cfg.Compare != nil {
		agents = append(agents, agent{"compare", *cfg.Compare})
	}
	var runs []sbsRun
	for round := 1; round <= cfg.Rounds; round++ {
		for _, a := range agents {
			if err := ctx.Err(); err != nil {
				return runs, err
			}
			sbsProgress(cfg, "side by side, round %d/%d: %s (%s)", round, cfg.Rounds, a.name, a.bins.IPAMD)
			r, err := sbsOne(ctx, cfg, a.bins, fmt.Sprintf("round%d-%s", round, a.name))
			if err != nil {
				return runs, fmt.Errorf("side by side, round %d, %s (%s): %w", round, a.name, a.bins.IPAMD, err)
			}
			r.Agent, r.Round = a.name, round
			sbsProgress(cfg, "  %d EC2 calls; idle settled %d, at %d pods %d, after delete %d, churn mean %.1f max %d; ADD p99 %s; all done %.1fs; %d first ADDs failed",
				r.Total, r.IdleSettled, cfg.Pods, r.IdleAt30, r.IdleAfterDelete, r.ChurnIdleMean, r.ChurnIdleMax, r.Add.P99.Round(time.Millisecond), r.AllDone.Seconds(), r.FailedFirst)
			runs = append(runs, r)
		}
	}
	return runs, nil
}

func sbsProgress(cfg sbsConfig, format string, args ...any) {
	if cfg.Progress != nil {
		fmt.Fprintf(cfg.Progress, format+"\n", args...)
	}
}

// sbsOne runs the scenario once in a fresh local VPC; label names the run
// in the saved node logs.
func sbsOne(ctx context.Context, cfg sbsConfig, bins localvpc.AgentBinaries, label string) (r sbsRun, err error) {
	v, err := localvpc.Start(ctx, localvpc.Config{Scenario: sbsScenario(), WorkDir: cfg.WorkDir, Logger: cfg.Log})
	if err != nil {
		return r, fmt.Errorf("local VPC: %w", err)
	}
	if cfg.OnVPC != nil {
		cfg.OnVPC(v)
	}
	defer func() {
		if cerr := v.Close(); cerr != nil {
			cfg.Log.Error("closing the side-by-side VPC", "err", cerr)
		}
	}()
	// Runs after the agent is stopped and before Close removes the node's
	// directory, which holds the only copy of an agent's own log file.
	defer func() { err = sbsSaveLogs(cfg, v, label, err) }()
	n := v.Nodes()[0]
	if err := v.Sim.SetFaults(realisticFaults()); err != nil {
		return r, fmt.Errorf("vpcsim faults: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := v.StartAgentBinaries(sctx, n, bins, sbsEnv); err != nil {
		return r, err
	}
	defer func() { _ = v.StopAgent(n, syscall.SIGTERM, 10*time.Second) }() // the VPC's Close kills what is left
	if err := v.WaitAgentBinariesReady(sctx, n, nil); err != nil {
		return r, err
	}
	idle := func(live int) (int, int, error) {
		p, err := observePool(v.Sim, n.ID)
		return p.Held - live, p.ENIs, err
	}
	settleFor := func(live int, quiet, limit time.Duration) (int, error) {
		p, _, err := waitPoolStable(ctx, v.Sim, n.ID, 0, quiet, limit)
		return p.Held - live, err
	}
	settle := func(live int) (int, error) { return settleFor(live, cfg.Settle, cfg.SettleMax) }
	if r.IdleSettled, err = settle(0); err != nil {
		return r, err
	}
	rt, err := newPodRuntime(v, n, new(atomic.Int64))
	if err != nil {
		return r, err
	}

	pods, lat, err := sbsCreate(ctx, cfg, rt, &r)
	if err != nil {
		deleteAll(ctx, rt, pods)
		return r, err
	}
	if r.Add, err = bench.Summarize(lat); err != nil {
		return r, err
	}
	if r.IdleAt30, err = settle(len(pods)); err != nil {
		return r, err
	}
	deleteAll(ctx, rt, pods)
	if r.IdleAfterDelete, err = settleFor(0, cfg.ReleaseQuiet, cfg.ReleaseMax); err != nil {
		return r, err
	}

	// Churn: ChurnLive pods, then every ChurnEvery one operation, a DEL of
	// the oldest pod and an ADD in turn (issue 17's sustainable rate).
	// The set-up's ADDs are retried as kubelet would: an agent that
	// fails an ADD while its refill is in flight is not broken.
	var live []*pod
	for range cfg.ChurnLive {
		p, err := rt.addRetrying(ctx, cfg.Retry, nil)
		if err != nil {
			deleteAll(ctx, rt, live)
			return r, fmt.Errorf("churn set-up: %w", err)
		}
		live = append(live, p)
	}
	var sum, samples int
	tick := time.NewTicker(cfg.ChurnEvery)
	sample := time.NewTicker(250 * time.Millisecond)
	end := time.After(cfg.Churn)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-end:
			break loop
		case <-sample.C:
			i, enis, err := idle(len(live))
			if err != nil {
				continue
			}
			sum += i
			samples++
			r.ChurnIdleMax = max(r.ChurnIdleMax, i)
			r.ENIsDuringChurn = max(r.ENIsDuringChurn, enis)
		case <-tick.C:
			// one operation per tick: DEL the oldest pod, then ADD one
			if len(live) == cfg.ChurnLive {
				_, _ = rt.del(ctx, live[0])
				live = live[1:]
			} else if p, _, err := rt.add(ctx); err != nil {
				r.ChurnFailed++
			} else {
				live = append(live, p)
			}
		}
	}
	tick.Stop()
	sample.Stop()
	deleteAll(ctx, rt, live)
	if samples > 0 {
		r.ChurnIdleMean = float64(sum) / float64(samples)
	}
	st := v.Sim.Stats()
	r.Calls = st.Calls
	for _, c := range st.Calls {
		r.Total += c
	}
	return r, ctx.Err()
}

// sbsSaveLogs copies the run's node logs to cfg.NodeLogs, or, when the run
// failed, to a directory in os.TempDir(); a failure's error names where.
func sbsSaveLogs(cfg sbsConfig, v *localvpc.VPC, label string, runErr error) error {
	dir := cfg.NodeLogs
	if dir == "" {
		if runErr == nil {
			return nil
		}
		dir = filepath.Join(os.TempDir(), "vpccni-bench-logs-"+v.RunID)
	}
	dir = filepath.Join(dir, label)
	if err := v.SaveLogs(dir); err != nil {
		if cfg.Log != nil {
			cfg.Log.Warn("saving node logs", "dir", dir, "err", err)
		}
		return runErr
	}
	if runErr != nil {
		return fmt.Errorf("%w (node logs in %s)", runErr, dir)
	}
	return nil
}

// sbsCreate creates cfg.Pods pods cfg.Spacing apart, each retried every
// cfg.Retry as addRetrying does.
func sbsCreate(ctx context.Context, cfg sbsConfig, rt *podRuntime, r *sbsRun) ([]*pod, []time.Duration, error) {
	var (
		mu    sync.Mutex
		pods  []*pod
		lat   []time.Duration
		errs  []error
		wg    sync.WaitGroup
		start = time.Now()
	)
	for i := range cfg.Pods {
		if i > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(cfg.Spacing):
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			p, err := rt.addRetrying(ctx, cfg.Retry, func(d time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				lat = append(lat, d)
				if err != nil && first {
					r.FailedFirst++
				}
				first = false
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			pods = append(pods, p)
			r.AllDone = max(r.AllDone, time.Since(start))
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return pods, lat, fmt.Errorf("%d of %d pods never got an address, first: %w", len(errs), cfg.Pods, errs[0])
	}
	return pods, lat, nil
}

// sbsActions lists every EC2 action any run called, sorted.
func sbsActions(runs []sbsRun) []string {
	seen := map[string]bool{}
	for _, r := range runs {
		for a := range r.Calls {
			seen[a] = true
		}
	}
	var out []string
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}
