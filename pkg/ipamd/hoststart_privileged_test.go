package ipamd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// nsHost is the fake host with ReconcileHost done by the real host
// networking inside node, with the given iptables binary, so what Init
// programs is read back from the kernel.
type nsHost struct {
	*fakeHost
	net      *networkutils.Network
	node     ns.NetNS
	iptables string
}

func (h nsHost) ReconcileHost(ctx context.Context, c networkutils.HostConfig) (networkutils.HostResult, error) {
	c.IPTablesPath = h.iptables
	var res networkutils.HostResult
	err := h.node.Do(func(ns.NetNS) error {
		var err error
		res, err = h.net.ReconcileHost(ctx, c)
		return err
	})
	return res, err
}

// nodeWithPrimary is a namespace standing for the node, whose eth0 carries
// the instance's primary ENI MAC.
func nodeWithPrimary(t *testing.T, h *harness) ns.NetNS {
	t.Helper()
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	mac := ""
	for _, e := range inst.ENIs {
		if e.ID == inst.PrimaryENI {
			mac = e.MAC
		}
	}
	node := testutil.NewNS(t)
	inNS(t, node, "ip", "link", "add", "eth0", "address", mac, "type", "veth", "peer", "name", "eth0-p")
	inNS(t, node, "ip", "link", "set", "eth0", "up")
	return node
}

// holdXtablesLock points every iptables of this process at a private
// xtables lock file (the machine's lock is never taken) and holds that
// lock as another process would; the returned function releases it.
func holdXtablesLock(t *testing.T) (release func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "xtables.lock")
	t.Setenv("XTABLES_LOCKFILE", path)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	release = sync.OnceFunc(func() { _ = f.Close() }) // closing drops the lock
	t.Cleanup(release)
	return release
}

// TestPrivilegedInitWaitsOutHeldXtablesLock: another process holds the
// xtables lock for longer than one reconcile waits for it (networkutils'
// 30 s patience). ipamd must not exit for that (kubelet would restart it
// into the same wait, with a growing CrashLoopBackOff): once the lock is
// free it becomes ready and its SNAT chain is in the node's kernel.
func TestPrivilegedInitWaitsOutHeldXtablesLock(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	node := nodeWithPrimary(t, h)
	release := holdXtablesLock(t)
	h.n.hostSync.host = nsHost{fakeHost: h.host, net: networkutils.New(nil), node: node, iptables: "iptables-legacy"}

	l, err := Listen(h.cfg.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- h.n.Run(ctx, l) }()

	// One reconcile gave up on the lock: ipamd must still be running.
	gaveUp := func() bool { return counterValue(t, h.n.metrics.ConnmarkReconciles.WithLabelValues("error")) >= 1 }
	if err := poll.Until(ctx, 90*time.Second, func() error {
		select {
		case err := <-runErr:
			t.Fatalf("ipamd stopped while the xtables lock was held: %v", err)
		default:
		}
		if !gaveUp() {
			return errors.New("no reconcile gave up yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("no host reconcile gave up on the held xtables lock: %v", err)
	}
	select {
	case err := <-runErr:
		t.Fatalf("ipamd stopped after the reconcile gave up on the held xtables lock: %v", err)
	default:
	}
	release()

	conn := dial(t, h.cfg.SocketPath)
	if err := poll.Until(ctx, 90*time.Second, func() error {
		select {
		case err := <-runErr:
			t.Fatalf("ipamd stopped after the xtables lock was released: %v", err)
		default:
		}
		if st := healthStatus(t, conn, HealthService); st != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health %v", st)
		}
		return nil
	}); err != nil {
		t.Fatalf("ipamd not SERVING after the xtables lock was released: %v", err)
	}
	if out := inNS(t, node, "iptables-legacy", "-t", "nat", "-S", "AWS-SNAT-CHAIN-0"); !strings.Contains(out, "SNAT --to-source "+h.n.node.id.LocalIPv4.String()) {
		t.Errorf("ipamd is ready but the node's SNAT chain is:\n%s", out)
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run after SIGTERM: %v", err)
	}
}

// TestPrivilegedInitFailsAtOnceOnBrokenHost: a host failure that waiting
// cannot heal (here no iptables binary where the node says) still ends
// ipamd at once with that error.
func TestPrivilegedInitFailsAtOnceOnBrokenHost(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	node := nodeWithPrimary(t, h)
	h.n.hostSync.host = nsHost{fakeHost: h.host, net: networkutils.New(nil), node: node,
		iptables: filepath.Join(t.TempDir(), "iptables-legacy")}
	l, err := Listen(h.cfg.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- h.n.Run(ctx, l) }()
	select {
	case err := <-runErr:
		if err == nil || !strings.Contains(err.Error(), "iptables") {
			t.Errorf("Run with no iptables binary: %v, want the host networking error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run still runs 20 s after host networking failed for good")
	}
}
