package resourcecontroller

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// BenchmarkBranchReady measures, for 20 SGP pods created at once on one
// m5.2xlarge, the time from pod creation to its branch annotation (the
// moment ipamd can wire it), with EC2 latencies of the order EC2 shows for
// these calls. Reported as p50-ms and p99-ms (cmd/vpccni-bench, SGP figure).
func BenchmarkBranchReady(b *testing.B) {
	w := newWorld(b)
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"CreateNetworkInterface":    vpcsim.Duration(400 * time.Millisecond),
		"AssociateTrunkInterface":   vpcsim.Duration(200 * time.Millisecond),
		"DeleteNetworkInterface":    vpcsim.Duration(200 * time.Millisecond),
		"DescribeNetworkInterfaces": vpcsim.Duration(100 * time.Millisecond),
	}}); err != nil {
		b.Fatal(err)
	}
	h := newHarness(b, w.ec2, Config{Cooldown: time.Second, CooldownTick: 100 * time.Millisecond, GCInterval: time.Minute})
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addNode(fmt.Sprintf("rc-bench-%d", b.N), inst4, nil)
	node := fmt.Sprintf("rc-bench-%d", b.N)
	h.declareSGP(node)
	h.waitCapacity(node, 38)
	const pods = 20
	var samples []time.Duration
	b.ResetTimer()
	for iter := range b.N {
		created := map[string]time.Time{}
		for i := range pods {
			name := fmt.Sprintf("b%d-%02d", iter, i)
			created[name] = time.Now()
			if _, err := h.createPod(name, node, map[string]string{"role": "db-client"}); err != nil {
				b.Fatal(err)
			}
		}
		ready := map[string]time.Duration{}
		waitFor(b, 2*time.Minute, "every pod annotated", func() (bool, string) {
			var l corev1.PodList
			if err := h.admin.List(context.Background(), &l, client.InNamespace(h.ns)); err != nil {
				return false, err.Error()
			}
			now := time.Now()
			for _, p := range l.Items {
				if t0, ok := created[p.Name]; ok && p.Annotations[PodENIAnnotation] != "" {
					if _, seen := ready[p.Name]; !seen {
						ready[p.Name] = now.Sub(t0)
					}
				}
			}
			return len(ready) == pods, fmt.Sprintf("%d of %d", len(ready), pods)
		})
		for _, d := range ready {
			samples = append(samples, d)
		}
		b.StopTimer()
		for name := range created {
			h.deletePod(name)
		}
		waitFor(b, 2*time.Minute, "branches deleted", func() (bool, string) {
			return len(w.branches()) == 0, fmt.Sprint(len(w.branches()))
		})
		b.StartTimer()
	}
	b.StopTimer()
	sum, err := bench.Summarize(samples)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(sum.P50)/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(sum.P99)/float64(time.Millisecond), "p99-ms")
}
