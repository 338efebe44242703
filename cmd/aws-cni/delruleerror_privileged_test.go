package main

import (
	"fmt"
	"net"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedDelRuleErrorLeavesRetryItsRoute: deleting a pod's rules
// fails (here: more copies of its from-pod rule than one pass deletes, as
// older plugin versions could leave), so the DEL fails after ipamd
// released the pod. The runtime retries; ipamd then knows no such pod and
// only the route through the sandbox's host veth proves the rules left are
// the pod's. The failed DEL must keep that route, and the retries must end
// with the node as it was, with and without prevResult. Before, the route
// went despite the failure and the retry succeeded leaving the rules.
func TestPrivilegedDelRuleErrorLeavesRetryItsRoute(t *testing.T) {
	testutil.Privileged(t)
	for _, withPrev := range []bool{true, false} {
		t.Run(fmt.Sprintf("prevResult=%v", withPrev), func(t *testing.T) {
			n := newNode(t, "192.168.0.10")
			before := snapshot(t, n.ns.Path())
			ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.40", deviceNumber: 1, routeTable: 2})
			podNS := testutil.NewNS(t)
			add := call{command: "ADD", containerID: "ctr-a", netns: podNS.Path(), ifName: "eth0",
				podName: "a", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			out := n.run(t, add)
			out.mustSucceed(t, "ADD a")
			addRuleCopies(t, n, net.ParseIP("10.0.0.40"), 2, 200)

			del := add
			del.command = "DEL"
			if withPrev {
				del.conf = netconf("1.0.0", out.stdout, nil)
			}
			const tries = 5
			for try := 1; ; try++ {
				o := n.run(t, del)
				t.Logf("DEL %d: error %v; node then: %s", try, o.err, counted(snapshot(t, n.ns.Path())))
				if o.err == nil {
					break
				}
				if try == tries {
					t.Fatalf("DEL still failing after %d tries: %s", tries, o.err.Error())
				}
			}
			// The DEL that succeeded must have left nothing: the runtime
			// does not call it again.
			n.sandboxGone(t, podNS, vethname.HostVethName("eni", "default", "a", 0))
			wantState(t, "node after the failed DEL's retries", n.ns.Path(), before)
			n.run(t, del).mustSucceed(t, "DEL once more")
		})
	}
}

// counted renders a snapshot with repeated lines counted, for the log.
func counted(lines []string) string {
	var out []string
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && lines[j] == lines[i] {
			j++
		}
		if j-i > 1 {
			out = append(out, fmt.Sprintf("%dx %s", j-i, lines[i]))
		} else {
			out = append(out, lines[i])
		}
		i = j
	}
	return fmt.Sprintf("%q", out)
}

// addRuleCopies adds copies more of the from-pod rule of pod (priority
// 1536, lookup table) in the node's namespace. RuleAdd asks the kernel to
// refuse a rule it has; this request, without NLM_F_EXCL, adds one as
// older plugins could.
func addRuleCopies(t *testing.T, n node, pod net.IP, table, copies int) {
	t.Helper()
	err := n.ns.Do(func(ns.NetNS) error {
		for range copies {
			req := nl.NewNetlinkRequest(unix.RTM_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_ACK)
			msg := nl.NewRtMsg()
			msg.Family = unix.AF_INET
			msg.Src_len = 32
			msg.Table = uint8(table)
			msg.Type = unix.RTN_UNICAST // FR_ACT_TO_TBL
			msg.Protocol = unix.RTPROT_BOOT
			msg.Scope = unix.RT_SCOPE_UNIVERSE
			req.AddData(msg)
			req.AddData(nl.NewRtAttr(unix.RTA_SRC, pod.To4()))
			prio := make([]byte, 4)
			nl.NativeEndian().PutUint32(prio, hostcontract.PriorityFromPod)
			req.AddData(nl.NewRtAttr(nl.FRA_PRIORITY, prio))
			if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
				return fmt.Errorf("add a copy of rule from %s lookup %d: %w", pod, table, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
