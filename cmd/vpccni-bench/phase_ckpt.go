package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// Figure 21: ipamd's own AddNetwork latency with a durable checkpoint on a
// real disk, at a realistic pod count, under concurrent ADDs and DELs: the
// cost the checkpoint's group commit exists to keep small.
const (
	keyCkpt = "ipamd_add_network_latency_durable_checkpoint"

	ckptLive    = 250 // pods holding an address while the clients run
	ckptClients = 3
	// ckptWarm asks for the node's whole pool (15 ENIs x 49), so no ADD
	// waits for EC2 and the addresses released during the run (cooling
	// for IP_COOLDOWN_PERIOD, 30 s) never run out.
	ckptWarm = 735
	// ckptFloorPause is the second floor's pause between two syncs, about
	// the median gap between two of ipamd's syncs during the churn (0.14
	// ms in a runtime trace, 0.29 at p75; bench/README.md, figure 21).
	ckptFloorPause = 200 * time.Microsecond
)

// ckptRounds is each client's ADD+DEL pairs: live pods plus every
// released (cooling) address must fit the node's 735.
func ckptRounds(quick bool) int {
	if quick {
		return 20
	}
	return 150
}

func ckptFigure(c config) bench.Figure {
	return bench.Figure{
		ID: 21, Key: keyCkpt, Title: fmt.Sprintf("ipamd AddNetwork latency, %d live pods, %d clients, checkpoint on disk", ckptLive, ckptClients),
		Method: prose(`Goal: AddNetwork p99 <= 2 ms. Node 'ckpt' (m5.24xlarge, WARM_IP_TARGET=%d, 30 s IP cooldown), its pool
			full before the run. Its checkpoint is the node's /var/run/aws-node/ipam.json in the node's directory
			under the run directory, on a real disk (filesystem type below; the log of docs/compatibility.md, one fdatasync per
			batch of concurrent changes). %d pods get addresses first; then %d concurrent clients, each on its own warm gRPC connection to
			ipamd's unix socket, each do %d rounds of AddNetwork for a new pod, then DelNetwork of that pod. A sample
			is the wall time of one unary call measured by the client on the socket (no CNI plugin, no namespaces):
			ipamd's server-side latency plus the local gRPC round trip, nothing subtracted. Nearest-rank percentiles.
			"AddNetwork in ipamd" is the same ADDs as ipamd itself timed them (the duration in its request log line:
			from its handler's start to the reply, without the gRPC transport either side). "fdatasync floor" is,
			right after the clients, as many syncs as ADDs of one small overwrite of a file in the checkpoint's
			directory, one at a time and nothing else: what the disk asks of any ADD acknowledged once durable.
			"fdatasync floor, %s apart" is the same with a pause of at least that between syncs, as ipamd's syncs have during the
			churn (the time until the next batch's callers arrive): on a virtual disk a sync that follows a pause
			costs more than one that follows another sync (bench/README.md, figure 21).`,
			ckptWarm, ckptLive, ckptClients, ckptRounds(c.Quick), ckptFloorPause),
	}
}

// phaseCkpt measures figure 21 on the ckpt node.
func (r *run) phaseCkpt(ctx context.Context) {
	f := ckptFigure(r.cfg)
	r.progressf("figure 21: ipamd AddNetwork at %d live pods, %d clients, checkpoint on disk", ckptLive, ckptClients)
	n, err := r.node(nodeCkpt)
	if err != nil {
		r.fail(f, err)
		return
	}
	defer r.stopAgent(n)
	if _, _, err := r.startAgent(ctx, n, []string{"WARM_IP_TARGET=" + strconv.Itoa(ckptWarm)}); err != nil {
		r.fail(f, err)
		return
	}
	fsType, err := filesystemOf(n.HostPath(localvpc.NodeRunDir))
	if err != nil {
		r.fail(f, err)
		return
	}
	need := ckptLive + ckptClients*ckptRounds(r.cfg.Quick)
	if pl, stable, err := waitPoolStable(ctx, r.v.Sim, n.ID, need, 2*time.Second, 2*time.Minute); err != nil || !stable {
		// An agent that reads max pods from /app/eni-max-pods.txt (absent in
		// local VPC nodes) takes 110 and stops growing there.
		msg := fmt.Sprintf("the pool did not settle at %d addresses or more within 2m0s (last: %d; an agent stops growing at its max pods)", need, pl.Held)
		if cause := errors.Join(err, ctx.Err()); cause != nil {
			r.fail(f, fmt.Errorf("%s: %w", msg, cause))
		} else {
			r.fail(f, errors.New(msg))
		}
		return
	}
	conns := make([]*grpc.ClientConn, ckptClients)
	for i := range conns {
		if conns[i], err = grpc.NewClient("unix://"+n.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			r.fail(f, err)
			return
		}
		defer conns[i].Close()
	}
	c := ckptClient{cni: rpc.NewCNIBackendClient(conns[0]), prefix: "bench-ckpt-" + r.v.RunID}
	for i := range ckptLive {
		if _, err := c.add(ctx, fmt.Sprint("live-", i)); err != nil {
			r.fail(f, err)
			return
		}
	}
	add, del, err := ckptChurn(ctx, conns, c.prefix, ckptRounds(r.cfg.Quick))
	if err != nil {
		r.fail(f, err)
		return
	}
	sa, err := bench.Summarize(add)
	if err != nil {
		r.fail(f, err)
		return
	}
	sd, err := bench.Summarize(del)
	if err != nil {
		r.fail(f, err)
		return
	}
	f.Values = append(bench.LatencyValues("AddNetwork ", sa), bench.LatencyValues("DelNetwork ", sd)...)
	if srvAdd, err := serverDurations(n.HostPath(localvpc.NodeLogDir+"/ipamd.log"), "AddNetwork", c.prefix+"-c"); err != nil {
		r.cfg.Log.Warn("figure 21: ipamd's own AddNetwork durations", "err", err)
	} else if ss, err := bench.Summarize(srvAdd); err == nil {
		f.Values = append(f.Values, bench.LatencyValues("AddNetwork in ipamd ", ss)...)
		r.progressf("  AddNetwork in ipamd (its request log): p50 %s p99 %s", ss.P50.Round(time.Microsecond), ss.P99.Round(time.Microsecond))
	}
	for _, pause := range []time.Duration{0, ckptFloorPause} {
		name := "fdatasync floor "
		if pause > 0 {
			name = fmt.Sprintf("fdatasync floor, %s apart ", pause)
		}
		if floor, err := syncFloor(n.HostPath(localvpc.NodeRunDir), len(add), pause); err != nil {
			r.cfg.Log.Warn("figure 21: the disk's "+strings.TrimSpace(name), "err", err)
		} else if sf, err := bench.Summarize(floor); err == nil {
			f.Values = append(f.Values, bench.LatencyValues(name, sf)...)
			r.progressf("  %s(one small overwrite, alone): p50 %s p99 %s", name, sf.P50.Round(time.Microsecond), sf.P99.Round(time.Microsecond))
		}
	}
	if st, err := os.Stat(n.HostPath(localvpc.CheckpointPath)); err == nil {
		f.Values = append(f.Values, bench.Count("checkpoint size at the end", int(st.Size()), "bytes"))
	}
	f.Method += " Checkpoint filesystem: " + fsType + "."
	r.put(f)
	r.progressf("  AddNetwork p50 %s p99 %s, DelNetwork p50 %s p99 %s (checkpoint on %s)",
		sa.P50.Round(time.Microsecond), sa.P99.Round(time.Microsecond), sd.P50.Round(time.Microsecond), sd.P99.Round(time.Microsecond), fsType)
}

// ckptChurn runs the clients, one per connection, and returns every
// AddNetwork and DelNetwork sample.
func ckptChurn(ctx context.Context, conns []*grpc.ClientConn, prefix string, rounds int) (add, del []time.Duration, err error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ckptClient{cni: rpc.NewCNIBackendClient(conn), prefix: prefix}
			var a, d []time.Duration
			var cerr error
			for j := range rounds {
				id := fmt.Sprintf("c%d-%d", i, j)
				var took time.Duration
				if took, cerr = c.add(ctx, id); cerr != nil {
					break
				}
				a = append(a, took)
				if took, cerr = c.del(ctx, id); cerr != nil {
					break
				}
				d = append(d, took)
			}
			mu.Lock()
			defer mu.Unlock()
			add, del = append(add, a...), append(del, d...)
			if cerr != nil {
				errs = append(errs, fmt.Errorf("client %d: %w", i, cerr))
			}
		}()
	}
	wg.Wait()
	return add, del, errors.Join(errs...)
}

// serverDurations reads ipamd's own duration of every op request whose
// container id starts with prefix from its request log (one JSON line
// per request at DEBUG, docs/compatibility.md).
func serverDurations(path, op, prefix string) ([]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []time.Duration
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg      string `json:"msg"`
			Key      string `json:"key"`
			Duration int64  `json:"duration"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != op {
			continue
		}
		if _, id, ok := strings.Cut(line.Key, "/"); ok && strings.HasPrefix(id, prefix) {
			out = append(out, time.Duration(line.Duration))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s line for %s* in %s", op, prefix, path)
	}
	return out, nil
}

// syncFloor times n fdatasyncs, one after another with pause between
// them, each of a 256-byte overwrite of a preallocated file in dir (a log
// record's shape).
func syncFloor(dir string, n int, pause time.Duration) (out []time.Duration, err error) {
	f, err := os.CreateTemp(dir, "bench-sync-floor-*")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, f.Close(), os.Remove(f.Name())) }()
	const size = 64 << 10
	if _, err := f.Write(make([]byte, size)); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	rec := make([]byte, 256)
	for i := range n {
		start := time.Now()
		if _, err := f.WriteAt(rec, int64(i*len(rec))%size); err != nil {
			return nil, err
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	return out, nil
}

// ckptClient calls ipamd as the plugin would, without the plugin.
type ckptClient struct {
	cni    rpc.CNIBackendClient
	prefix string // container ids and pod names of this run
}

func (c ckptClient) add(ctx context.Context, id string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	r, err := c.cni.AddNetwork(ctx, &rpc.AddNetworkRequest{
		ContainerId: c.prefix + "-" + id, IfName: "eth0", NetworkName: "aws-cni",
		K8SPodNamespace: "bench", K8SPodName: "ckpt-" + id, K8SPodInfraContainerId: c.prefix + "-" + id,
	})
	took := time.Since(start)
	if err == nil && !r.GetSuccess() {
		err = errors.New("success=false")
	}
	if err != nil {
		return took, fmt.Errorf("AddNetwork %s: %w", id, err)
	}
	return took, nil
}

func (c ckptClient) del(ctx context.Context, id string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	r, err := c.cni.DelNetwork(ctx, &rpc.DelNetworkRequest{
		ContainerId: c.prefix + "-" + id, IfName: "eth0", NetworkName: "aws-cni",
		K8SPodNamespace: "bench", K8SPodName: "ckpt-" + id, K8SPodInfraContainerId: c.prefix + "-" + id, Reason: "PodDeleted",
	})
	took := time.Since(start)
	if err == nil && !r.GetSuccess() {
		err = errors.New("success=false")
	}
	if err != nil {
		return took, fmt.Errorf("DelNetwork %s: %w", id, err)
	}
	return took, nil
}

// filesystemOf names the filesystem holding path; tmpfs would make the
// figure meaningless, so it is refused.
func filesystemOf(path string) (string, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "", fmt.Errorf("statfs %s: %w", path, err)
	}
	names := map[int64]string{0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x794c7630: "overlayfs", 0x01021994: "tmpfs"}
	name, ok := names[int64(st.Type)]
	if !ok {
		name = fmt.Sprintf("0x%x", st.Type)
	}
	if name == "tmpfs" {
		return name, fmt.Errorf("the checkpoint directory %s is on tmpfs, not a disk (set TMPDIR)", path)
	}
	return name, nil
}
