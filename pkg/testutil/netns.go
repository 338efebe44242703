package testutil

import (
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
)

// NewNS creates a fresh network namespace that is removed when the test
// ends, whatever its outcome. Loopback is brought up because onlink routes
// via 169.254.1.1 fail in a namespace whose lo is down.
func NewNS(tb testing.TB) ns.NetNS {
	tb.Helper()
	Privileged(tb)
	n, err := testutils.NewNS()
	if err != nil {
		tb.Fatalf("create netns: %v", err)
	}
	tb.Cleanup(func() {
		_ = n.Close()
		_ = testutils.UnmountNS(n)
	})
	if err := n.Do(func(ns.NetNS) error { return linkUp("lo") }); err != nil {
		tb.Fatalf("bring lo up in %s: %v", n.Path(), err)
	}
	return n
}
