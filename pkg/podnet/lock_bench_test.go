package podnet

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPrivilegedSetupLock measures what the pod lock (lockPod) adds
// to ADD's wiring: Setup of a pod without a lock file and with one,
// interleaved and alternating which goes first, and an uncontended
// lock and unlock alone. Making and removing the pods' namespaces is not
// timed:
//
//	VPC_CNI_PRIVILEGED=1 go test -run '^$' -bench SetupLock -benchtime 300x ./pkg/podnet
func BenchmarkPrivilegedSetupLock(b *testing.B) {
	lockFile := filepath.Join(b.TempDir(), "aws-cni.lock")
	var lockOnly []time.Duration
	plain, locked := benchSetupPairs(b,
		func(i int, withLock bool, pod *Pod) {
			pod.Sandbox = fmt.Sprintf("%064x", i)
			if withLock {
				pod.LockFile = lockFile
			}
		},
		func(pod Pod) error {
			start := time.Now()
			l := lockPod(context.Background(), lockFile, pod.Interfaces[0].HostVeth, addLockWait)
			l.unlock()
			lockOnly = append(lockOnly, time.Since(start))
			if !l.held() {
				return fmt.Errorf("uncontended pod lock not taken")
			}
			return nil
		})
	reportP50s(b, samples{"unlocked-setup", plain}, samples{"locked-setup", locked}, samples{"lock-unlock", lockOnly})
}
