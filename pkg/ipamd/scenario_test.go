package ipamd

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
)

// calls is shorthand for expected EC2 call counts per action.
type calls = map[string]int64

type scenarioStep struct {
	name    string
	pods    int
	wait    bool // let cooling addresses expire first
	want    simCounts
	calls   calls  // EC2 calls the step makes (nil: not checked)
	starved string // substring of the pool's starvation reason
}

// TestWarmPoolScenarios runs the warm-target combinations of upstream's
// docs/compatibility.md, "Warm-pool arithmetic", against vpcsim with the real SDK: after every step it checks the
// ENIs, secondary IPs and prefixes EC2 holds for the instance, the EC2
// calls the step made, and that datastore, checkpoint and EC2 agree.
// Instance limits: m5.large 3 ENIs × 10 IPv4; t3.medium 3 × 6; t2.medium
// (Xen: no prefixes) 3 × 6.
func TestWarmPoolScenarios(t *testing.T) {
	const init = "init"
	for _, sc := range []struct {
		name  string
		typ   string
		env   map[string]string
		steps []scenarioStep
	}{
		{"m5.large/WARM_ENI_TARGET=1", "m5.large", nil, []scenarioStep{
			{name: init, pods: 0, want: simCounts{1, 9, 0}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "5 pods: a second ENI", pods: 5, want: simCounts{2, 18, 0},
				// Subnet discovery answered at start; ENIs reuse it for 5 minutes.
				calls: calls{"CreateNetworkInterface": 1, "AttachNetworkInterface": 1, "ModifyNetworkInterfaceAttribute": 1}},
			{name: "12 pods: a third ENI", pods: 12, want: simCounts{3, 27, 0},
				calls: calls{"CreateNetworkInterface": 1, "AttachNetworkInterface": 1, "ModifyNetworkInterfaceAttribute": 1}},
			{name: "27 pods: ENI limit, nothing to do", pods: 27, want: simCounts{3, 27, 0}, calls: calls{}, starved: "ENI limit reached: 3 of 3"},
			{name: "0 pods: two ENIs freed", pods: 0, want: simCounts{1, 9, 0},
				// FreeENI: detach (attachment id known since the attach), delete; no describe.
				calls: calls{"DetachNetworkInterface": 2, "DeleteNetworkInterface": 2}},
		}},
		{"m5.large/WARM_ENI_TARGET=2", "m5.large", map[string]string{"WARM_ENI_TARGET": "2"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{2, 18, 0}, calls: calls{"AssignPrivateIpAddresses": 1, "CreateNetworkInterface": 1, "AttachNetworkInterface": 1, "ModifyNetworkInterfaceAttribute": 1}},
			{name: "1 pod: a third ENI", pods: 1, want: simCounts{3, 27, 0}, calls: calls{"CreateNetworkInterface": 1, "AttachNetworkInterface": 1, "ModifyNetworkInterfaceAttribute": 1}},
		}},
		{"m5.large/WARM_IP_TARGET=5", "m5.large", map[string]string{"WARM_IP_TARGET": "5"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{1, 5, 0}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "4 pods: primary topped up", pods: 4, want: simCounts{1, 9, 0}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "8 pods: a second ENI with the shortfall only", pods: 8, want: simCounts{2, 13, 0}, calls: calls{"CreateNetworkInterface": 1, "AttachNetworkInterface": 1, "ModifyNetworkInterfaceAttribute": 1}},
			{name: "2 pods: excess released, empty ENI freed", pods: 2, want: simCounts{1, 7, 0}, calls: calls{"UnassignPrivateIpAddresses": 1, "DetachNetworkInterface": 1, "DeleteNetworkInterface": 1}},
		}},
		{"m5.large/WARM_IP_TARGET=5,MINIMUM_IP_TARGET=10", "m5.large", map[string]string{"WARM_IP_TARGET": "5", "MINIMUM_IP_TARGET": "10"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{2, 10, 0}, calls: calls{"AssignPrivateIpAddresses": 1, "CreateNetworkInterface": 1, "AttachNetworkInterface": 1, "ModifyNetworkInterfaceAttribute": 1}},
			{name: "7 pods: five warm", pods: 7, want: simCounts{2, 12, 0}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "0 pods: back to the minimum", pods: 0, want: simCounts{2, 10, 0}, calls: calls{"UnassignPrivateIpAddresses": 1}},
		}},
		{"m5.large/MINIMUM_IP_TARGET=20", "m5.large", map[string]string{"MINIMUM_IP_TARGET": "20"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{3, 20, 0}, calls: calls{"AssignPrivateIpAddresses": 1, "CreateNetworkInterface": 2, "AttachNetworkInterface": 2, "ModifyNetworkInterfaceAttribute": 2}},
			{name: "22 pods: waiting pods grow the pool past the minimum", pods: 22, want: simCounts{3, 22, 0}, calls: calls{"AssignPrivateIpAddresses": 1}},
		}},
		{"m5.large/WARM_ENI_TARGET=1,MAX_ENI=1", "m5.large", map[string]string{"MAX_ENI": "1"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{1, 9, 0}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "5 pods: no second ENI", pods: 5, want: simCounts{1, 9, 0}, calls: calls{}, starved: "ENI limit reached: 1 of 1"},
		}},
		{"t3.medium/WARM_ENI_TARGET=1,VPC_CNI_MAX_PODS=10", "t3.medium", map[string]string{"VPC_CNI_MAX_PODS": "10"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{1, 5, 0}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "9 pods: growth stops at max pods", pods: 9, want: simCounts{2, 10, 0}, calls: calls{"CreateNetworkInterface": 1, "AttachNetworkInterface": 1, "ModifyNetworkInterfaceAttribute": 1}},
		}},
		{"m5.large/PD,WARM_PREFIX_TARGET=1", "m5.large", map[string]string{"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1", "VPC_CNI_MAX_PODS": "110"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{1, 0, 1}, calls: calls{"AssignPrivateIpAddresses": 1}},
			// The 4 pods beyond the first prefix and the warm prefix: one assign of 2.
			{name: "20 pods: a free prefix kept", pods: 20, want: simCounts{1, 0, 3}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "0 pods: back to one prefix", pods: 0, want: simCounts{1, 0, 1}, calls: calls{"UnassignPrivateIpAddresses": 1}},
		}},
		{"m5.large/PD,WARM_PREFIX_TARGET=2", "m5.large", map[string]string{"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "2", "VPC_CNI_MAX_PODS": "110"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{1, 0, 2}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "1 pod: two whole prefixes free", pods: 1, want: simCounts{1, 0, 3}, calls: calls{"AssignPrivateIpAddresses": 1}},
		}},
		{"m5.large/PD,WARM_IP_TARGET=5", "m5.large", map[string]string{"ENABLE_PREFIX_DELEGATION": "true", "WARM_IP_TARGET": "5", "VPC_CNI_MAX_PODS": "110"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{1, 0, 1}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "14 pods: a second prefix", pods: 14, want: simCounts{1, 0, 2}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "0 pods: one prefix released", pods: 0, want: simCounts{1, 0, 1}, calls: calls{"UnassignPrivateIpAddresses": 1}},
		}},
		{"m5.large/PD,WARM_IP_TARGET=5,MINIMUM_IP_TARGET=40", "m5.large", map[string]string{"ENABLE_PREFIX_DELEGATION": "true", "WARM_IP_TARGET": "5", "MINIMUM_IP_TARGET": "40", "VPC_CNI_MAX_PODS": "110"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{1, 0, 3}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "44 pods: a fourth prefix", pods: 44, want: simCounts{1, 0, 4}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "0 pods: back to three", pods: 0, want: simCounts{1, 0, 3}, calls: calls{"UnassignPrivateIpAddresses": 1}},
		}},
		{"m5.large/PD,WARM_PREFIX_TARGET=1,VPC_CNI_MAX_PODS=250: ENI full", "m5.large", map[string]string{"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1", "VPC_CNI_MAX_PODS": "250"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{1, 0, 1}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "140 pods: a second ENI", pods: 140, want: simCounts{2, 0, 10}, calls: calls{"AssignPrivateIpAddresses": 1, "CreateNetworkInterface": 1, "AttachNetworkInterface": 1, "ModifyNetworkInterfaceAttribute": 1}},
			{name: "0 pods: second ENI freed", pods: 0, want: simCounts{1, 0, 1}, calls: calls{"UnassignPrivateIpAddresses": 1, "DetachNetworkInterface": 1, "DeleteNetworkInterface": 1}},
		}},
		{"t2.medium/PD on Xen falls back to secondary IPs", "t2.medium", map[string]string{"ENABLE_PREFIX_DELEGATION": "true", "WARM_IP_TARGET": "3"}, []scenarioStep{
			{name: init, pods: 0, want: simCounts{1, 3, 0}, calls: calls{"AssignPrivateIpAddresses": 1}},
			{name: "4 pods: primary full (5), a second ENI for three warm", pods: 4, want: simCounts{2, 7, 0}, calls: calls{"AssignPrivateIpAddresses": 2, "CreateNetworkInterface": 1, "AttachNetworkInterface": 1, "ModifyNetworkInterfaceAttribute": 1}},
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{instanceType: sc.typ, cfg: func(c *config.Config) {
				env := map[string]string{"IP_COOLDOWN_PERIOD": "0"}
				for k, v := range sc.env {
					env[k] = v
				}
				loaded, _, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
				if err != nil {
					t.Fatal(err)
				}
				loaded.BackingStore, loaded.SocketPath = c.BackingStore, c.SocketPath
				*c = loaded
			}})
			pods := map[int]bool{}
			for _, st := range sc.steps {
				before := h.calls()
				if st.name == init {
					h.settle()
				} else {
					if st.wait {
						h.expire()
					}
					h.setPods(pods, st.pods)
				}
				got := h.simCounts()
				if got != st.want {
					t.Errorf("%s: EC2 holds %+v, want %+v", st.name, got, st.want)
				}
				delta := callDelta(before, h.calls())
				if st.calls != nil {
					if diff := cmp.Diff(st.calls, delta); diff != "" {
						t.Errorf("%s: EC2 calls (-want +got):\n%s", st.name, diff)
					}
				} else {
					t.Logf("%s: EC2 calls %v", st.name, delta)
				}
				starved, _ := h.state(0)
				switch {
				case st.starved == "" && starved != "" && len(pods) < st.pods:
					t.Errorf("%s: starved: %s", st.name, starved)
				case st.starved != "" && !strings.Contains(starved, st.starved):
					t.Errorf("%s: starvation reason %q, want %q", st.name, starved, st.starved)
				}
				h.checkConsistent()
				if h.host.wired() != got.ENIs-1 {
					t.Errorf("%s: host networking wired for %d ENIs, want %d", st.name, h.host.wired(), got.ENIs-1)
				}
			}
		})
	}
}

// TestCoolingAddressesCountAsUsed is upstream #2896 against vpcsim: with
// WARM_IP_TARGET=2 and every address cooling after a burst of deletions,
// the pool asks EC2 for two more instead of starving new pods; cooling
// addresses are never released; once the cooldown is over the excess goes.
func TestCoolingAddressesCountAsUsed(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmIPTarget = 2; c.IPCooldown = 300 * time.Millisecond }})
	pods := map[int]bool{}
	h.setPods(pods, 3)
	if got := h.simCounts(); got != (simCounts{1, 5, 0}) {
		t.Fatalf("3 pods: %+v", got)
	}
	before := h.calls()
	h.setPods(pods, 0) // three addresses now cooling
	if got := h.simCounts(); got != (simCounts{1, 5, 0}) {
		t.Errorf("all pods deleted, addresses cooling: %+v, want 5 kept (2 free + 3 cooling)", got)
	}
	if d := callDelta(before, h.calls()); len(d) != 0 {
		t.Errorf("cooling must neither be released nor grow the pool while 2 are free: %v", d)
	}
	// Two new pods take the two free addresses; the three cooling ones do
	// not count, so the pool grows by two at once.
	h.setPods(pods, 2)
	if got := h.simCounts(); got != (simCounts{1, 7, 0}) {
		t.Errorf("2 new pods while 3 addresses cool: %+v, want 7 addresses", got)
	}
	st := h.pool(0).Stats
	if st.CoolingIPs != 3 || st.AvailableIPs != 2 {
		t.Errorf("stats: %+v", st)
	}
	h.expire()
	h.settle()
	if got := h.simCounts(); got != (simCounts{1, 4, 0}) {
		t.Errorf("cooldown over: %+v, want 2 pods + 2 warm", got)
	}
	h.checkConsistent()
}
