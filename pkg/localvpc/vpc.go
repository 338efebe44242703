package localvpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// DefaultRefPluginDir holds the reference CNI plugins (Debian's
// containernetworking-plugins); portmap from there is chained by the conflist.
const DefaultRefPluginDir = "/usr/lib/cni"

// refPlugins are what upstream's init container copies into every node.
var refPlugins = []string{"loopback", "portmap", "host-local", "bandwidth", "tuning"}

// Config configures a local VPC.
type Config struct {
	Scenario vpcsim.Scenario
	// BinDir holds the project's binaries (aws-vpc-cni, ipamd, aws-cni,
	// egress-cni), e.g. "bin" after `make build`.
	BinDir string
	// RefPluginDir holds the reference plugins; DefaultRefPluginDir if empty.
	RefPluginDir string
	// WorkDir is where the run directory is created; os.TempDir() if empty.
	WorkDir string
	Logger  *slog.Logger
	// SimLogger receives vpcsim's own logs (discarded if nil).
	SimLogger *slog.Logger
	// IPv6 routes IPv6 in the data plane (ipv6.go; see IPv6Scenario).
	IPv6 bool
}

// VPC is a running local VPC.
type VPC struct {
	Sim    *vpcsim.Sim
	DP     *dataplane.Dataplane
	RunID  string
	Dir    string // run directory: nodes' private directories, CNI caches
	Region string
	// EchoAddr is the in-VPC whoami service (VPCEchoAddr of the scenario).
	EchoAddr netip.Addr
	// EchoAddrV6 is its IPv6 address when Config.IPv6 (ipv6.go).
	EchoAddrV6 netip.Addr

	cfg    Config
	log    *slog.Logger
	mirror *dataplane.Mirror

	mu    sync.Mutex
	nodes []*Node
	pods  map[string]*Pod // by container id
}

// VPCEchoAddr is the in-VPC server that reports a caller's source address:
// the VPC's base address + 2 (where AmazonProvidedDNS lives in a real VPC).
func VPCEchoAddr(sc vpcsim.Scenario) (netip.Addr, error) {
	if len(sc.VPCs) == 0 {
		return netip.Addr{}, errors.New("scenario has no VPC")
	}
	p, err := netip.ParsePrefix(sc.VPCs[0].CIDR)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("VPC CIDR %q: %w", sc.VPCs[0].CIDR, err)
	}
	return p.Masked().Addr().Next().Next(), nil
}

// Start builds the simulator, the data plane and one node per instance
// (namespaces, private directories, reference plugins). Agents are started
// separately with StartAgents. On error everything is removed.
func Start(ctx context.Context, cfg Config) (_ *VPC, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RefPluginDir == "" {
		cfg.RefPluginDir = DefaultRefPluginDir
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = os.TempDir()
	}
	if cfg.BinDir != "" {
		if cfg.BinDir, err = filepath.Abs(cfg.BinDir); err != nil {
			return nil, fmt.Errorf("bin dir: %w", err)
		}
	}
	if err := checkNodeNames(cfg.Scenario); err != nil {
		return nil, err
	}
	echo, err := VPCEchoAddr(cfg.Scenario)
	if err != nil {
		return nil, err
	}
	var simOpts []vpcsim.Option
	if cfg.SimLogger != nil {
		simOpts = append(simOpts, vpcsim.WithLogger(cfg.SimLogger))
	}
	sim, err := vpcsim.New(cfg.Scenario, simOpts...)
	if err != nil {
		return nil, fmt.Errorf("start vpcsim: %w", err)
	}
	v := &VPC{Sim: sim, RunID: dataplane.NewRunID(), Region: sim.Region(), EchoAddr: echo, cfg: cfg, log: cfg.Logger, pods: map[string]*Pod{}}
	defer func() {
		if err != nil {
			_ = v.Close()
		}
	}()
	v.Dir = filepath.Join(cfg.WorkDir, dataplane.NamePrefix+v.RunID)
	if err := os.MkdirAll(v.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	v.DP, err = dataplane.New(dataplane.Config{
		RunID:     v.RunID,
		Logger:    cfg.Logger,
		EchoAddrs: []netip.Addr{echo},
		Services: []dataplane.Service{
			{Name: "imds", Addr: dataplane.IMDSAddr, Handler: sim.IMDSHandlerByRemoteAddr()},
			{Name: "ec2", Addr: dataplane.EC2Addr, Handler: sim.EC2Handler()},
		},
	})
	if err != nil {
		return nil, err
	}
	if cfg.IPv6 {
		if err := v.enableIPv6(); err != nil {
			return nil, err
		}
	}
	v.mirror = v.DP.Mirror(sim)
	if err := v.mirror.Err(); err != nil {
		return nil, fmt.Errorf("data plane: %w", err)
	}
	for _, inst := range sim.State().Instances {
		if inst.State != "running" {
			continue
		}
		if err := v.addNode(ctx, inst); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (v *VPC) addNode(ctx context.Context, inst vpcsim.InstanceView) error {
	path, err := v.DP.NodeNS(inst.ID)
	if err != nil {
		return err
	}
	name := inst.Tags["Name"]
	if name == "" {
		name = inst.ID
	}
	n := &Node{ID: inst.ID, Name: name, PrimaryIP: inst.PrimaryIP, PublicIP: inst.PublicIP, NetNS: path, Dir: filepath.Join(v.Dir, inst.ID), log: v.log, runID: v.RunID}
	if err := n.startAnchor(ctx); err != nil {
		return err
	}
	v.mu.Lock()
	v.nodes = append(v.nodes, n)
	v.mu.Unlock()
	if err := n.trackConnections(ctx); err != nil {
		return err
	}
	// What upstream's init container does: the reference plugins.
	for _, p := range refPlugins {
		src := filepath.Join(v.cfg.RefPluginDir, p)
		if _, err := os.Stat(src); err != nil {
			if p == "portmap" || p == "loopback" {
				return fmt.Errorf("node %s: reference plugin %s: %w (install containernetworking-plugins)", n.ID, p, err)
			}
			continue
		}
		if err := copyFile(src, filepath.Join(n.HostPath(NodeCNIBinDir), p)); err != nil {
			return fmt.Errorf("node %s: %w", n.ID, err)
		}
	}
	return nil
}

// Nodes returns the nodes in instance order.
func (v *VPC) Nodes() []*Node {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := append([]*Node(nil), v.nodes...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Node returns the node with the given instance id or Name tag.
func (v *VPC) Node(idOrName string) (*Node, error) {
	for _, n := range v.Nodes() {
		if n.ID == idOrName || n.Name == idOrName {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node %q in this VPC", idOrName)
}

// Close stops every agent, removes every pod and node namespace, the data
// plane and the run directory. Safe to call more than once.
func (v *VPC) Close() error {
	var errs []error
	v.mu.Lock()
	nodes := v.nodes
	v.nodes = nil
	pods := v.pods
	v.pods = map[string]*Pod{}
	v.mu.Unlock()
	for _, n := range nodes {
		errs = append(errs, n.close())
	}
	for _, p := range pods {
		errs = append(errs, dataplane.DeleteNamedNS(p.NetNS))
	}
	if v.mirror != nil {
		v.mirror.Stop()
	}
	if v.DP != nil {
		errs = append(errs, v.DP.Close())
	}
	// Pods whose DEL was never run are still pinned under the run prefix.
	errs = append(errs, dataplane.Cleanup(dataplane.RunPrefix(v.RunID)))
	if v.Sim != nil {
		v.Sim.Close()
	}
	if v.Dir != "" && strings.Contains(v.Dir, dataplane.NamePrefix) {
		errs = append(errs, os.RemoveAll(v.Dir))
	}
	return errors.Join(errs...)
}

// CleanupStale removes what crashed earlier runs left: their namespaces and
// their run directories in workDir (os.TempDir() if empty). Live runs are
// left alone. It returns the run prefixes it removed.
func CleanupStale(workDir string) ([]string, error) {
	if workDir == "" {
		workDir = os.TempDir()
	}
	// Orphaned agents first: they would keep the namespaces alive.
	if names, err := dataplane.ListNamespaces(dataplane.NamePrefix); err == nil {
		var stale []string
		ids := map[string]bool{}
		for _, n := range names {
			if id, ok := dataplane.RunIDOf(n); ok && dataplane.StaleRun(id) {
				stale = append(stale, dataplane.NsPath(n))
				ids[id] = true
			}
		}
		_, _ = killProcessesIn(stale, ids)
	}
	removed, err := dataplane.CleanupStale()
	ents, rerr := os.ReadDir(workDir)
	if rerr != nil {
		return removed, errors.Join(err, fmt.Errorf("list %s: %w", workDir, rerr))
	}
	errs := []error{err}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), dataplane.NamePrefix) {
			continue
		}
		id := strings.TrimPrefix(e.Name(), dataplane.NamePrefix)
		if dataplane.StaleRun(id) {
			errs = append(errs, os.RemoveAll(filepath.Join(workDir, e.Name())))
		}
	}
	return removed, errors.Join(errs...)
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, st.Mode().Perm()); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// RunEnv is set to the run id in the environment of every process localvpc
// starts in a node (anchor, agent, plugins); children inherit it. Stale-run
// cleanup stops only processes that carry the id of a dead run.
const RunEnv = "VPC_CNI_LOCALVPC_RUN"

// withRunMarker returns env with RunEnv set to runID (replacing any value
// inherited from the driver's own environment).
func withRunMarker(env []string, runID string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, RunEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(out, RunEnv+"="+runID)
}

// runMarkerOf reads RunEnv from the environment pid started with.
func runMarkerOf(pid int) (string, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return "", false
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(RunEnv+"=")); ok {
			return string(v), true
		}
	}
	return "", false
}

// killProcessesIn SIGKILLs the processes left by dead runs: those whose
// network namespace is one of the given pinned namespaces AND whose
// environment carries RunEnv with one of runIDs. Anything else found there
// (someone else's process, or one of a live run) is left alone.
func killProcessesIn(nsPaths []string, runIDs map[string]bool) (int, error) {
	inodes := map[uint64]bool{}
	for _, p := range nsPaths {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err == nil {
			inodes[st.Ino] = true
		}
	}
	if len(inodes) == 0 || len(runIDs) == 0 {
		return 0, nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	killed := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err != nil || !inodes[st.Ino] {
			continue
		}
		if id, ok := runMarkerOf(pid); !ok || !runIDs[id] {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
			killed++
		}
	}
	return killed, nil
}

// VPCID is the id of the VPC the nodes run in (the resource controller's
// --vpc-id, which scopes its leaked-ENI cleaners).
func (v *VPC) VPCID() (string, error) {
	nodes := v.Nodes()
	if len(nodes) == 0 {
		return "", errors.New("local VPC has no node")
	}
	inst, err := v.Sim.Instance(nodes[0].ID)
	if err != nil {
		return "", fmt.Errorf("VPC id: %w", err)
	}
	return inst.VPCID, nil
}
