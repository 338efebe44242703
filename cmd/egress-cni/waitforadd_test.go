package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
)

// TestWaitForAddNamesTheInFlightLock: a DEL that cannot take the
// container's in-flight lock (its directory is a file) says so, naming
// the lock and the container, not the address store.
func TestWaitForAddNamesTheInFlightLock(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".inflight-aws-cni"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := &egress.Config{Network: "aws-cni", Family: egress.V4, DataDir: dir}
	l, err := waitForAdd(conf, "ctr-lock")
	if err == nil {
		l.Release()
		t.Fatal("took the lock")
	}
	if msg := err.Error(); strings.Contains(msg, "address store") || !strings.Contains(msg, "in-flight lock of container ctr-lock") {
		t.Errorf("error %q, want it to name container ctr-lock's in-flight lock", msg)
	}
}
