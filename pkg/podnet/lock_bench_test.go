package podnet

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// BenchmarkPrivilegedSetupLock measures what the pod lock (lockPod) adds
// to ADD's wiring: Setup of a pod without a lock file and with one,
// interleaved and alternating which goes first, and an uncontended
// lock and unlock alone. Making and removing the pods' namespaces is not
// timed:
//
//	VPC_CNI_PRIVILEGED=1 go test -run '^$' -bench SetupLock -benchtime 300x ./pkg/podnet
func BenchmarkPrivilegedSetupLock(b *testing.B) {
	testutil.Privileged(b)
	ctx := context.Background()
	node := testutil.NewNS(b)
	lockFile := filepath.Join(b.TempDir(), "aws-cni.lock")
	var plain, locked, lockOnly []time.Duration
	b.ResetTimer()
	for i := range b.N {
		for j := range 2 {
			withLock := (i+j)%2 == 1
			b.StopTimer()
			podNS := testutil.NewNS(b)
			pod := Pod{NetNS: podNS.Path(), MTU: 9001, Sandbox: fmt.Sprintf("%064x", i),
				Interfaces: []Interface{iface("bench", fmt.Sprintf("p%d-%d", i, j), fmt.Sprintf("10.%d.%d.%d", 10+j, i/256%256, i%256), 0, 254)}}
			if withLock {
				pod.LockFile = lockFile
			}
			b.StartTimer()
			err := node.Do(func(ns.NetNS) error {
				start := time.Now()
				if err := Setup(ctx, pod); err != nil {
					return err
				}
				d := time.Since(start)
				if !withLock {
					plain = append(plain, d)
					return Teardown(ctx, pod)
				}
				locked = append(locked, d)
				start = time.Now()
				l := lockPod(context.Background(), lockFile, pod.Interfaces[0].HostVeth, addLockWait)
				l.unlock()
				lockOnly = append(lockOnly, time.Since(start))
				if !l.held() {
					return fmt.Errorf("uncontended pod lock not taken")
				}
				return Teardown(ctx, pod)
			})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			dropBenchNS(b, podNS)
			b.StartTimer()
		}
	}
	b.StopTimer()
	reportP50s(b, samples{"unlocked-setup", plain}, samples{"locked-setup", locked}, samples{"lock-unlock", lockOnly})
}
