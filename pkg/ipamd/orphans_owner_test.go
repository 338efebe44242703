package ipamd

import (
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestVethOwnersAcrossCards: who the sweep takes a pod veth to stand
// for, when a pod's allocations are spread over cards. t0 < t1 < t2.
func TestVethOwnersAcrossCards(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	sfx := vethname.Suffix("default", "web-0")
	pod := func(container string, at time.Time, ifaces int) datastore.Assignment {
		return datastore.Assignment{Key: datastore.Key{NetworkName: "aws-cni", ContainerID: container, IfName: "eth0"}, AssignedAt: at,
			Meta: datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "web-0", InterfacesCount: ifaces}}
	}
	recovered := datastore.Assignment{Key: datastore.RecoveredKey(sfx), AssignedAt: t1, Meta: datastore.Metadata{InterfacesCount: 1}}
	type judged struct {
		card int
		a    datastore.Assignment
		owns bool
	}
	for _, tc := range []struct {
		name  string
		held  [][]datastore.Assignment
		alias func() string
		want  []judged
	}{{
		// Card 0's checkpoint recovered (stamped at the restart), card 1
		// restored: both are the running multi-NIC pod's.
		name: "multi-NIC pod, card 0 recovered",
		held: [][]datastore.Assignment{{recovered}, {pod("s1", t0, 2)}},
		want: []judged{{0, recovered, true}, {1, pod("s1", t0, 2), true}},
	}, {
		// The pod's sandbox replaced after the recovery by a single-NIC
		// one whose address spilled to card 1 (card 0 full): the
		// recovered address is the old sandbox's.
		name: "newer single-NIC sandbox on another card",
		held: [][]datastore.Assignment{{recovered}, {pod("s2", t2, 1)}},
		want: []judged{{0, recovered, false}, {1, pod("s2", t2, 1), true}},
	}, {
		name: "newer multi-NIC sandbox",
		held: [][]datastore.Assignment{{recovered, pod("s2", t2, 2)}, {pod("s2", t2, 2)}},
		want: []judged{{0, recovered, false}, {0, pod("s2", t2, 2), true}, {1, pod("s2", t2, 2), true}},
	}, {
		name:  "marked by a single-NIC sandbox on another card",
		held:  [][]datastore.Assignment{{recovered}, {pod("s2", t0, 1)}},
		alias: func() string { return podnet.SandboxMark("s2") },
		want:  []judged{{0, recovered, false}, {1, pod("s2", t0, 1), true}},
	}, {
		name:  "marked by the multi-NIC pod whose card 0 was recovered",
		held:  [][]datastore.Assignment{{recovered}, {pod("s1", t0, 2)}},
		alias: func() string { return podnet.SandboxMark("s1") },
		want:  []judged{{0, recovered, true}, {1, pod("s1", t0, 2), true}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			o := vethOwners(tc.held, nil)
			alias := ""
			if tc.alias != nil {
				alias = tc.alias()
			}
			for _, j := range tc.want {
				if got := o.owns(j.card, sfx, alias, j.a); got != j.owns {
					t.Errorf("card %d, %s: owns=%v, want %v", j.card, j.a.Key, got, j.owns)
				}
			}
		})
	}
}
