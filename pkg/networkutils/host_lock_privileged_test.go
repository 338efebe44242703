package networkutils

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// holdXtablesLock points every iptables this test runs at a private
// xtables lock file (XTABLES_LOCKFILE, so the machine's lock is never
// taken) and holds that lock as another process would. The returned
// function releases it.
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

// reconcileAsync runs ReconcileHost inside node on a goroutine of its own.
func reconcileAsync(node ns.NetNS, n *Network, ctx context.Context, cfg HostConfig) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- node.Do(func(ns.NetNS) error { _, err := n.ReconcileHost(ctx, cfg); return err })
	}()
	return done
}

// TestPrivilegedHostXtablesLockHeld: while another process holds the
// xtables lock, ReconcileHost waits for it no longer than its context, or
// than its own patience when the context has no end, and fails; once the
// lock is free the next reconcile programs the node.
func TestPrivilegedHostXtablesLockHeld(t *testing.T) {
	testutil.Privileged(t)
	node := newNode(t)
	cfg := stateConfig(t, "iptables-legacy", ConnmarkAuto)
	release := holdXtablesLock(t)
	n := New(nil)
	// A wait past this after the context or the patience ended is a hang.
	const slack = 20 * time.Second

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	select {
	case err := <-reconcileAsync(node, n, ctx, cfg):
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "xtables lock") {
			t.Errorf("reconcile with the lock held: %v, want the context's deadline and the xtables lock named", err)
		}
	case <-time.After(2*time.Second + slack):
		release()
		t.Fatalf("reconcile still waits for the xtables lock %v after its context ended", slack)
	}

	n.xtablesPatience = time.Second
	select {
	case err := <-reconcileAsync(node, n, context.Background(), cfg):
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "xtables lock") {
			t.Errorf("reconcile without deadline, lock held: %v, want it to give up on the xtables lock", err)
		}
	case <-time.After(time.Second + slack):
		release()
		t.Fatalf("reconcile without a deadline still waits for the xtables lock %v after its patience", slack)
	}

	release()
	reconcileIn(t, node, cfg)
	if out := sh(t, node, "iptables-legacy", "-t", "nat", "-S", snatChain); !strings.Contains(out, "SNAT --to-source "+nodeIP) {
		t.Errorf("after the lock was released the SNAT chain is:\n%s", out)
	}
	if res := reconcileIn(t, node, cfg); len(res.Changes) != 0 {
		t.Errorf("not converged after the lock was released: %q", res.Changes)
	}
}
