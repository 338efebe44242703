// Package chaos runs the real ipamd on a local VPC node while a simulated
// runtime creates and deletes pods as fast as it can, EC2 (vpcsim) fails
// a share of the mutating calls ipamd makes, and the agent is SIGKILLed
// and restarted over and over. It then checks that no address was ever
// given to two live pods, that no live pod lost its address, that nothing
// leaked once the pool settles, and that the runtime, the host, ipamd
// (introspection) and EC2 agree.
//
// The runtime plays the aws-cni plugin: it calls ipamd over gRPC and, for
// each pod ipamd gives an address, creates a link in the node namespace
// with the pod's host veth name, which is what ipamd's restart looks for.
// A DEL while ipamd is down succeeds, as the plugin's does.
//
// Privileged tier. VPC_CNI_CHAOS_OPS sets the number of answered
// operations (default 10,000); VPC_CNI_CHAOS_SOAK=1 runs a long soak
// (200,000 operations).
package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/vpctest"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// params sizes one run.
type params struct {
	ops      int     // answered ADD/DEL operations to reach
	kills    int     // SIGKILLs spread over the run (at least)
	workers  int     // concurrent runtime goroutines
	maxPods  int     // the pod count wanders in [0, maxPods]
	errRate  float64 // per injected rule, see faults
	settle   time.Duration
	deadline time.Duration
}

func paramsFromEnv(t *testing.T) params {
	p := params{ops: 10_000, kills: 12, workers: 8, maxPods: 8, errRate: 0.3, settle: 90 * time.Second, deadline: 9 * time.Minute}
	if os.Getenv("VPC_CNI_CHAOS_SOAK") == "1" {
		p.ops, p.kills, p.deadline = 200_000, 120, 2*time.Hour
	}
	if v := os.Getenv("VPC_CNI_CHAOS_OPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("VPC_CNI_CHAOS_OPS=%q: want a whole number ≥ 100", v)
		}
		p.ops = n
		p.kills = max(3, n/800)
		p.deadline = max(p.deadline, time.Duration(n/20)*time.Second)
	}
	return p
}

// mutating are the EC2 actions that change state; ipamd's calls to them
// are where faults are injected and counted.
var mutating = []string{
	"CreateNetworkInterface", "AttachNetworkInterface", "DetachNetworkInterface", "DeleteNetworkInterface",
	"AssignPrivateIpAddresses", "UnassignPrivateIpAddresses", "ModifyNetworkInterfaceAttribute", "CreateTags",
}

// faults: each mutating action fails with InternalError at errRate (a 500
// the SDK retries), then at errRate again with IncorrectState (a 400 that
// ipamd itself must handle) on the ENI life-cycle actions, or with a
// second InternalError on create and assign: about 51% of the calls
// (0.3: ipamd makes few calls now, about 30 a minute under this churn,
// and the run must still hit 100 within its deadline on a loaded CI
// machine, where 0.25 hit 82 in 6 minutes).
// InsufficientFreeAddressesInSubnet is not injected: ipamd rightly stops
// growing the pool for minutes after it, which would stall the run. Calls are fast so the run
// fits the CI budget; attach and detach still take a moment so kills land
// in the middle of an ENI's life.
func faults(rate float64) vpcsim.Faults {
	f := vpcsim.Faults{
		Latency: map[string]vpcsim.Duration{
			"*": vpcsim.Duration(2 * time.Millisecond), "AttachNetworkInterface": vpcsim.Duration(20 * time.Millisecond),
		},
		AttachDelay: vpcsim.Duration(50 * time.Millisecond),
		DetachDelay: vpcsim.Duration(50 * time.Millisecond),
		Seed:        7,
	}
	for _, a := range mutating {
		f.Errors = append(f.Errors, vpcsim.ErrorRule{Action: a, Code: "InternalError", Rate: rate})
		switch a {
		case "CreateNetworkInterface", "AssignPrivateIpAddresses":
			f.Errors = append(f.Errors, vpcsim.ErrorRule{Action: a, Code: "InternalError", Rate: rate})
		case "CreateTags":
		default:
			f.Errors = append(f.Errors, vpcsim.ErrorRule{Action: a, Code: "IncorrectState", Rate: rate})
		}
	}
	return f
}

// agentEnv: a small warm pool (so most churn reaches EC2), immediate
// address reuse (so a double hand-out shows), sub-second pool timers, and
// introspection on a unix socket the test can reach.
var agentEnv = []string{
	"WARM_IP_TARGET=1", "MINIMUM_IP_TARGET=0", "WARM_ENI_TARGET=0", "IP_COOLDOWN_PERIOD=0",
	"VPC_CNI_TEST_FAST_INTERVALS=true",
	"INTROSPECTION_BIND_ADDRESS=unix:" + localvpc.NodeRunDir + "/introspect.sock",
}

func TestPrivilegedChaos(t *testing.T) {
	testutil.Privileged(t)
	if testing.Short() {
		t.Skip("a few minutes of churn")
	}
	if _, err := os.Stat(filepath.Join(localvpc.DefaultRefPluginDir, "portmap")); err != nil {
		t.Skipf("reference CNI plugins missing (%v): install containernetworking-plugins (make deps)", err)
	}
	p := paramsFromEnv(t)
	sc, err := vpcsim.LoadScenario(filepath.Join("testdata", "chaos.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.deadline+5*time.Minute)
	defer cancel()
	startCtx, startCancel := context.WithTimeout(ctx, 4*time.Minute) // a loaded machine is slow to start namespaces
	v := vpctest.Start(t, startCtx, sc, "vpccni-chaos-logs")
	n := v.Nodes()[0]
	if err := v.StartAgent(startCtx, n, agentEnv); err != nil {
		t.Fatal(err)
	}
	if err := v.WaitReady(startCtx, n, nil); err != nil {
		t.Fatal(err)
	}
	startCancel()

	nsh, err := netns.GetFromPath(n.NetNS)
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	links, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	defer links.Close()
	rt, err := newRuntime(n, links, p)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.close()

	if err := v.Sim.SetFaults(faults(p.errRate)); err != nil {
		t.Fatal(err)
	}
	before := v.Sim.Stats()
	began := time.Now()

	// Churn, with SIGKILLs spread over the run.
	churn, stopChurn := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt.work(churn, ctx)
		}()
	}
	defer func() { stopChurn(); wg.Wait() }() // on every way out
	restarts := 0
	for k := 1; k <= p.kills && ctx.Err() == nil; k++ {
		if err := rt.waitOps(ctx, p.ops*k/(p.kills+1)); err != nil {
			t.Fatalf("before kill %d: %v\n%s", k, err, rt.summary())
		}
		if err := v.StopAgent(n, syscall.SIGKILL, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		rt.kills.Add(1)
		t.Logf("kill %d: %d operations answered, %d live pods, EC2 mutating calls so far: %d", k, rt.answered.Load(), rt.liveCount(), mutatingCalls(before, v.Sim.Stats()))
		// The runtime keeps going while the agent is down: ADDs are refused,
		// DELs succeed as the plugin's do.
		rt.waitRefused(ctx, 20)
		r, err := restart(ctx, v, n)
		restarts += r
		if err != nil {
			t.Fatalf("restart after kill %d: %v\n%s", k, err, rt.summary())
		}
	}
	if err := rt.waitOps(ctx, p.ops); err != nil {
		t.Errorf("%v", err)
	}
	// Fault coverage is a condition of the run too: the fewer EC2 calls
	// the pool makes per operation, the longer the churn must go on to hit
	// enough injected errors.
	floor := injectedFloor(p)
	covered, stopCover := context.WithDeadline(ctx, began.Add(p.deadline))
	if err := waitFor(covered, func() bool { return diffStats(before, v.Sim.Stats()).injected() >= floor }); err != nil {
		t.Errorf("waiting for %d injected EC2 errors: %v", floor, err)
	}
	stopCover()
	stopChurn()
	wg.Wait()
	churnTime := time.Since(began)

	// Quiet: the four views must agree with the live pods in place.
	if err := v.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	stats := diffStats(before, v.Sim.Stats())
	live, veths := rt.livePods()
	bad, waited := converge(ctx, p.settle, func() []string { return rt.disagreement(ctx, v, n, live, veths) })
	t.Logf("with %d live pods: views agree after %s: %v", len(live), waited.Round(time.Millisecond), len(bad) == 0)
	for _, b := range bad {
		t.Errorf("with live pods: %s", b)
	}

	// Every pod leaves; the pool settles at its warm target.
	rt.deleteAll(ctx)
	live, veths = rt.livePods()
	bad, waited = converge(ctx, p.settle, func() []string {
		d := rt.disagreement(ctx, v, n, live, veths)
		return append(d, settled(v.Sim, n.ID)...)
	})
	t.Logf("after every pod left: settled after %s: %v", waited.Round(time.Millisecond), len(bad) == 0)
	for _, b := range bad {
		t.Errorf("after every pod left: %s", b)
	}
	for _, vio := range rt.violationList() {
		t.Error(vio)
	}

	calls, failed, byCode := stats.mutating()
	t.Logf("chaos: %s of churn: %s; %d SIGKILLs (%d extra restarts after a failed start)",
		churnTime.Round(time.Second), rt.summary(), rt.kills.Load(), restarts)
	t.Logf("EC2 mutating calls: %d, failed %d (%.1f%%): %s", calls, failed, 100*float64(failed)/float64(max(calls, 1)), byCode)
	t.Logf("EC2: %d ENIs created, %d deleted; %d assign and %d unassign calls",
		stats.Calls["CreateNetworkInterface"], stats.Calls["DeleteNetworkInterface"], stats.Calls["AssignPrivateIpAddresses"], stats.Calls["UnassignPrivateIpAddresses"])
	if other := stats.notInjected(); other != "" {
		// Not a failure by itself: EC2 refusing a call ipamd should not have
		// made under this churn (listed in the report).
		t.Logf("EC2 errors not injected (calls EC2 refused on its own): %s", other)
	}
	if injected := stats.injected(); injected < floor {
		t.Errorf("only %d injected EC2 errors were hit; a run of %d operations must hit at least %d", injected, p.ops, floor)
	}
	if calls > 0 && float64(failed)/float64(calls) < 0.10 {
		t.Errorf("only %.1f%% of mutating EC2 calls failed; want at least 10%%", 100*float64(failed)/float64(calls))
	}
	if got := rt.answered.Load(); got < int64(p.ops) {
		t.Errorf("only %d operations answered, want %d", got, p.ops)
	}
}

// injectedFloor is how many injected EC2 errors a run must hit: 100 at the
// default size, in proportion for other sizes.
func injectedFloor(p params) int64 { return int64(max(10, 100*p.ops/10_000)) }

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// restart starts the agent again until it is ready; a start can fail
// when EC2 errors hit its initialisation, as a container would restart.
// It returns how many extra starts were needed.
func restart(ctx context.Context, v *localvpc.VPC, n *localvpc.Node) (int, error) {
	var last error
	for attempt := range 6 {
		if err := v.StartAgent(ctx, n, agentEnv); err != nil {
			return attempt, err
		}
		rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		last = v.WaitReady(rctx, n, nil)
		cancel()
		if last == nil {
			return attempt, nil
		}
		if err := v.StopAgent(n, syscall.SIGKILL, 5*time.Second); err != nil {
			return attempt, err
		}
	}
	return 6, fmt.Errorf("agent not ready after 6 starts: %w", last)
}

// converge polls check until it reports nothing or d passes, returning
// the last report and the time it took. Views change on their own while
// ipamd reconciles, so the condition is re-read, not slept on.
func converge(ctx context.Context, d time.Duration, check func() []string) ([]string, time.Duration) {
	start := time.Now()
	var bad []string
	_ = testutil.Eventually(ctx, d, func() error { // the report says what did not converge
		if bad = check(); len(bad) > 0 {
			return errors.New(bad[0])
		}
		return nil
	})
	if err := ctx.Err(); err != nil && len(bad) > 0 {
		bad = append(bad, err.Error())
	}
	return bad, time.Since(start)
}

// settled reports what EC2 still holds for the node beyond a settled pool
// with no pods: more than the primary ENI, or more than WARM_IP_TARGET=1
// free address.
func settled(sim *vpcsim.Sim, instanceID string) []string {
	s := readSim(sim, instanceID)
	var bad []string
	if len(s.enis) != 1 {
		bad = append(bad, fmt.Sprintf("EC2 has %d ENIs attached to the node, want only the primary with no pods", len(s.enis)))
	}
	total := 0
	for _, a := range s.enis {
		total += len(a)
	}
	if total > 1 {
		bad = append(bad, fmt.Sprintf("EC2 assigns %d secondary addresses to the node with no pods, want at most WARM_IP_TARGET=1", total))
	}
	return bad
}

// simStats is the EC2 calls of the run (the difference of two snapshots).
type simStats vpcsim.Stats

func diffStats(a, b vpcsim.Stats) simStats {
	out := simStats{Calls: map[string]int64{}, Errors: map[string]map[string]int64{}}
	for k, v := range b.Calls {
		out.Calls[k] = v - a.Calls[k]
	}
	for act, codes := range b.Errors {
		out.Errors[act] = map[string]int64{}
		for c, v := range codes {
			out.Errors[act][c] = v - a.Errors[act][c]
		}
	}
	return out
}

func (s simStats) mutating() (calls, failed int64, byCode string) {
	codes := map[string]int64{}
	for _, a := range mutating {
		calls += s.Calls[a]
		for c, n := range s.Errors[a] {
			if c != "" {
				failed += n
				codes[c] += n
			}
		}
	}
	var parts []string
	for c, n := range codes {
		parts = append(parts, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(parts)
	return calls, failed, strings.Join(parts, ", ")
}

// injectedCodes are the codes faults injects; vpcsim also answers
// IncorrectState on its own, rarely, so the count is an upper bound.
var injectedCodes = []string{"InternalError", "IncorrectState"}

// injected counts the errors of the injected codes on mutating actions.
func (s simStats) injected() int64 {
	var n int64
	for _, a := range mutating {
		for _, c := range injectedCodes {
			n += s.Errors[a][c]
		}
	}
	return n
}

// notInjected lists the other errors EC2 answered, by action and code.
func (s simStats) notInjected() string {
	var parts []string
	for a, codes := range s.Errors {
		for c, n := range codes {
			if c != "" && n > 0 && !slices.Contains(injectedCodes, c) {
				parts = append(parts, fmt.Sprintf("%s %s ×%d", a, c, n))
			}
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func mutatingCalls(before, now vpcsim.Stats) int64 {
	calls, _, _ := diffStats(before, now).mutating()
	return calls
}
