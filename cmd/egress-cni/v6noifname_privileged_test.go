package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedV6AddRefusesMissingIfName: IPv6 egress turns IPv6 off on
// the pod's main interface, CNI_IFNAME. When the pod has no interface of
// that name (a runtime or an earlier plugin naming it otherwise), the ADD
// skipped that step silently and succeeded: the pod's real main
// interface kept IPv6 beside v6if0's default route. The ADD must fail
// with code 4 naming CNI_IFNAME and leave nothing behind: the pod and the
// node as they were (no veth), no ip6tables nat rule, no address held;
// DEL with it succeeds, twice.
func TestPrivilegedV6AddRefusesMissingIfName(t *testing.T) {
	tp := newTopo(t)
	entry := withPrevResult(t, tp.egressEntry(true, ""))
	pod := testutil.NewNS(t)
	// The pod's main interface, under a name other than CNI_IFNAME.
	addMainIf(t, pod, "net1")
	ipv6Before := podSysctl(t, pod, "net/ipv6/conf/net1/disable_ipv6")
	tp.wantAddRefused(t, true, pod, "ctr-noif", "eth0", entry, types.ErrInvalidEnvironmentVariables, "CNI_IFNAME eth0")
	if got := podSysctl(t, pod, "net/ipv6/conf/net1/disable_ipv6"); got != ipv6Before {
		t.Errorf("pod net1 disable_ipv6 %q after the ADD and DELs, was %q", got, ipv6Before)
	}
}

// podSysctl reads key in the pod's namespace.
func podSysctl(t *testing.T, pod ns.NetNS, key string) string {
	t.Helper()
	var b []byte
	err := pod.Do(func(ns.NetNS) error {
		var err error
		b, err = os.ReadFile(filepath.Join("/proc/sys", key))
		return err
	})
	if err != nil {
		t.Fatal(fmt.Errorf("pod sysctl %s: %w", key, err))
	}
	return strings.TrimSpace(string(b))
}
