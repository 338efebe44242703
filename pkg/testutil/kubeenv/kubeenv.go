// Package kubeenv runs a real etcd and kube-apiserver on loopback for the
// Kubernetes test tier. Binaries come from VPC_CNI_KUBE_APISERVER and
// VPC_CNI_ETCD (scripts/test.sh sets both); without them tests skip loudly.
//
// One apiserver per test: kubeenv.Start(t). One per package:
//
//	func TestMain(m *testing.M) { os.Exit(kubeenv.Main(m)) }
//	func TestX(t *testing.T) { env := kubeenv.Shared(t); ... }
package kubeenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localkube"
)

// The control plane itself lives in pkg/localkube; these names keep the
// tests' vocabulary.
type (
	Env     = localkube.Env
	Options = localkube.Options
)

const (
	APIServerEnv = localkube.APIServerEnv
	EtcdEnv      = localkube.EtcdEnv
)

var (
	Binaries           = localkube.Binaries
	StartProcesses     = localkube.StartProcesses
	StartProcessesWith = localkube.StartProcessesWith
	ReadManifest       = localkube.ReadManifest
)

// Start runs a fresh pair for tb and stops it in tb.Cleanup, also when the
// test fails. Skips tb when the binaries are not configured.
func Start(tb testing.TB) *Env {
	tb.Helper()
	apiserver, etcd, err := Binaries()
	if err != nil {
		tb.Skip(err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	env, err := StartProcesses(ctx, apiserver, etcd)
	if err != nil {
		tb.Fatalf("kubeenv: %v", err)
	}
	tb.Cleanup(env.Stop)
	return env
}

var shared struct {
	sync.Mutex
	inMain bool
	env    *Env
	err    error
}

// Main runs the package's tests with one lazily started apiserver shared by
// every test calling Shared, and stops it afterwards. Use it from TestMain.
func Main(m *testing.M) int {
	shared.Lock()
	shared.inMain = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.env != nil {
		shared.env.Stop()
		shared.env = nil
	}
	return code
}

// Shared returns the package's shared environment, starting it on first use.
// Requires TestMain to call Main; skips when the binaries are not configured.
func Shared(tb testing.TB) *Env {
	tb.Helper()
	apiserver, etcd, err := Binaries()
	if err != nil {
		tb.Skip(err.Error())
	}
	shared.Lock()
	defer shared.Unlock()
	if !shared.inMain {
		tb.Fatal("kubeenv.Shared needs TestMain to call kubeenv.Main(m)")
	}
	if shared.env == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		shared.env, shared.err = StartProcesses(ctx, apiserver, etcd)
		cancel()
	}
	if shared.err != nil {
		tb.Fatalf("kubeenv: %v", shared.err)
	}
	return shared.env
}
