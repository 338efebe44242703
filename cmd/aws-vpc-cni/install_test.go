package main

import (
	"os"
	"path/filepath"
	"testing"
)

// An install killed between writing its temporary copy and renaming it
// (node shutdown, OOM kill) leaves a full binary beside the plugins; the
// next install removes such leftovers of the files it installs, and only
// those.
func TestInstallRemovesKilledInstallLeftovers(t *testing.T) {
	h := newHarness(t)
	leftovers := []string{".aws-cni.123456.tmp", ".egress-cni.42.tmp"}
	kept := []string{".bandwidth.7.tmp", "aws-cni.tmp", ".aws-cni.conf"}
	for _, n := range append(append([]string{}, leftovers...), kept...) {
		mustWrite(t, filepath.Join(h.bin, n), "partial", 0o600)
	}
	if _, err := h.prepared(noIMDS); err != nil {
		t.Fatal(err)
	}
	for _, n := range leftovers {
		if _, err := os.Stat(filepath.Join(h.bin, n)); !os.IsNotExist(err) {
			t.Errorf("leftover %s still there (%v)", n, err)
		}
	}
	for _, n := range kept {
		if _, err := os.Stat(filepath.Join(h.bin, n)); err != nil {
			t.Errorf("%s, not a leftover of ours, removed: %v", n, err)
		}
	}
}
