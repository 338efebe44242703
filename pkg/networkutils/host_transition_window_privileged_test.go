package networkutils

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// nftView is a namespace's nf_tables rule set (iptables-nft's tables and
// ours) as nft prints it: "family table/chain" → rule handle → rule text.
type nftView map[string]map[string]string

// parseRuleset reads `nft -a list ruleset`.
func parseRuleset(s string) nftView {
	v := nftView{}
	table, chain := "", ""
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "table":
			table = f[1] + " " + f[2]
		case len(f) >= 2 && f[0] == "chain":
			chain = f[1]
		case strings.Contains(l, " # handle "):
			text, h, _ := strings.Cut(strings.TrimSpace(l), " # handle ")
			v.put(table+"/"+chain, h, text)
		}
	}
	return v
}

func (v nftView) put(chain, handle, text string) {
	if v[chain] == nil {
		v[chain] = map[string]string{}
	}
	v[chain][handle] = text
}

// apply applies one `nft -a monitor` event line.
func (v nftView) apply(l string) {
	f := strings.Fields(l)
	if len(f) < 4 {
		return
	}
	table := f[2] + " " + f[3]
	switch {
	case (f[0] == "add" || f[0] == "insert") && f[1] == "rule" && len(f) >= 5:
		text, h, _ := strings.Cut(l, " # handle ")
		v.put(table+"/"+f[4], h, text)
	case f[0] == "delete" && f[1] == "rule" && len(f) >= 7:
		delete(v[table+"/"+f[4]], f[6])
	case f[0] == "delete" && f[1] == "chain" && len(f) >= 5:
		delete(v, table+"/"+f[4])
	case f[0] == "delete" && f[1] == "table":
		for k := range v {
			if strings.HasPrefix(k, table+"/") {
				delete(v, k)
			}
		}
	}
}

// has reports whether a rule of chain contains every one of subs.
func (v nftView) has(chain string, subs ...string) bool {
	for _, r := range v[chain] {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(r, s)
		}
		if all {
			return true
		}
	}
	return false
}

// pathInvariants are what established and new pod connections rely on.
// Each one that holds both before and after a reconcile must hold in
// every state the kernel passes through in between.
var pathInvariants = []struct {
	name  string
	holds func(nftView) bool
}{
	{"pod traffic leaving the VPC is SNATed", func(v nftView) bool {
		return v.has("ip nat/POSTROUTING", "jump "+snatChain) && v.has("ip nat/"+snatChain, "snat to")
	}},
	{"new pod connections get the connmark", func(v nftView) bool {
		return v.has("ip nat/PREROUTING", `iifname "eni*"`, "jump "+connmarkChain) && v.has("ip nat/"+connmarkChain, "ct mark set ct mark or") ||
			v.has("ip aws-cni/nat-prerouting", `iifname "eni*"`, "jump snat-mark") && v.has("ip aws-cni/snat-mark", "ct mark set ct mark |")
	}},
	{"pod packets restore the connmark", func(v nftView) bool {
		return v.has("ip mangle/PREROUTING", `iifname "eni*"`, "meta mark set ct mark and")
	}},
	{"branch-ENI pod packets restore the connmark", func(v nftView) bool {
		return v.has("ip mangle/PREROUTING", `iifname "vlan*"`, "meta mark set ct mark and")
	}},
	{"NodePort connections get the connmark", func(v nftView) bool {
		return v.has("ip mangle/PREROUTING", `iifname "eth0"`, "ct mark set ct mark or")
	}},
}

// monitor runs a kernel event monitor (`nft monitor`, `ip monitor`) in a
// namespace and collects its output.
type monitor struct {
	cmd  *exec.Cmd
	mark func(name string) string // makes a change; returns what the monitor reports for it
	mu   sync.Mutex
	out  bytes.Buffer
}

func (m *monitor) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.Write(p)
}

func (m *monitor) text() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.out.String()
}

// waitFor makes the marker change until the monitor reports it: from then
// on the monitor has seen every earlier change.
func (m *monitor) waitFor(t *testing.T, name string) {
	t.Helper()
	err := testutil.Eventually(context.Background(), 10*time.Second, func() error {
		if token := m.mark(name); !strings.Contains(m.text(), token) {
			return fmt.Errorf("monitor has not reported marker %s", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startMonitor starts argv in node and returns once it reports changes.
func startMonitor(t *testing.T, node ns.NetNS, mark func(string) string, argv ...string) *monitor {
	t.Helper()
	m := &monitor{mark: mark}
	m.cmd = exec.Command(argv[0], argv[1:]...)
	m.cmd.Stdout, m.cmd.Stderr = m, m
	do(t, node, m.cmd.Start) // the child runs in node
	t.Cleanup(func() { _ = m.cmd.Process.Kill(); _ = m.cmd.Wait() })
	m.waitFor(t, "monitor-start")
	return m
}

// stop waits until the monitor has reported everything done so far and
// returns its output lines after the start marker.
func (m *monitor) stop(t *testing.T) []string {
	t.Helper()
	m.waitFor(t, "monitor-end")
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
	_, s, _ := strings.Cut(m.text(), m.mark("monitor-start"))
	_, s, _ = strings.Cut(s, "\n")
	return strings.Split(s, "\n")
}

// startNFTMonitor watches node's nf_tables; markers are tables.
func startNFTMonitor(t *testing.T, node ns.NetNS) *monitor {
	return startMonitor(t, node, func(name string) string {
		sh(t, node, "nft", "add", "table", "ip", name)
		sh(t, node, "nft", "delete", "table", "ip", name)
		return "add table ip " + name
	}, "nft", "-a", "monitor")
}

// TestPrivilegedHostTransitionsKeepPodPaths: while ReconcileHost moves a
// node from one configuration to another, every state the kernel passes
// through still SNATs pod traffic, marks new pod connections and restores
// the mark on pod and NodePort packets, as far as both configurations do.
// Each nf_tables generation the reconcile commits is replayed from `nft
// monitor`, so a rule deleted before its replacement is added shows as a
// generation without it.
func TestPrivilegedHostTransitionsKeepPodPaths(t *testing.T) {
	testutil.Privileged(t)
	cfgs := transitionConfigs(t)
	var names []string
	for n, c := range cfgs {
		if n != "base" && c.IPTablesPath == cfgs["base"].IPTablesPath {
			names = append(names, n)
		}
	}
	var pairs [][2]string
	for _, n := range names {
		pairs = append(pairs, [2]string{"base", n}, [2]string{n, "base"})
	}
	for _, p := range pairs {
		from, to := p[0], p[1]
		t.Run(from+"->"+to, func(t *testing.T) {
			node := newNode(t)
			reconcileIn(t, node, cfgs[from])
			v := parseRuleset(sh(t, node, "nft", "-a", "list", "ruleset"))
			before := map[string]bool{}
			for _, inv := range pathInvariants {
				before[inv.name] = inv.holds(v)
			}
			m := startNFTMonitor(t, node)
			reconcileIn(t, node, cfgs[to])
			events := m.stop(t)
			after := parseRuleset(sh(t, node, "nft", "-a", "list", "ruleset"))

			// Replay the events; the state after each generation is one
			// the kernel's packets met.
			gen := 0
			var batch []string
			broken := map[string]bool{}
			for _, l := range events {
				if !strings.HasPrefix(l, "# new generation") {
					if strings.TrimSpace(l) != "" {
						v.apply(l)
						batch = append(batch, l)
					}
					continue
				}
				gen++
				for _, inv := range pathInvariants {
					if before[inv.name] && inv.holds(after) && !inv.holds(v) && !broken[inv.name] {
						broken[inv.name] = true
						t.Errorf("%s: not so after generation %d of the reconcile, which did:\n  %s", inv.name, gen, strings.Join(batch, "\n  "))
					}
				}
				batch = nil
			}
		})
	}
}
