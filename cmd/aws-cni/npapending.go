package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// npaPendingPrefix starts the name of every npa-pending marker.
const npaPendingPrefix = "npa-pending-"

// npaPendingMaxAge bounds a marker no DEL retried: every failed retry
// rewrites it, so one untouched that long belongs to a DEL the runtime
// gave up on (docs/compatibility.md, "Plugin (aws-cni) and runtime
// input"), and no later DEL would read it.
const npaPendingMaxAge = 24 * time.Hour

// npaPendingFile marks a pod whose DEL released its addresses in ipamd but
// could not tell the network policy agent. The plugin is a short-lived
// process and a retried DEL finds the pod unknown to ipamd, so only a file
// beside the pod lock carries the duty to the retry. Its name is the
// hashed pod name, never the runtime's value verbatim. It goes when a
// retried DEL tells the agent, when an ADD of the pod's name succeeds (the
// agent's policies for the name are then that sandbox's), or, unretried,
// after npaPendingMaxAge.
func (inv *invocation) npaPendingFile() string {
	return filepath.Join(filepath.Dir(inv.lockFile()),
		npaPendingPrefix+vethname.Suffix(inv.k8s.PodNamespace, inv.k8s.PodName))
}

func (inv *invocation) markNPAPending() {
	f := inv.npaPendingFile()
	err := os.WriteFile(f, nil, 0o600)
	if err == nil {
		// A rewrite of an empty file need not change its time: the
		// age counts from this DEL's attempt.
		now := time.Now()
		err = os.Chtimes(f, now, now)
	}
	if err != nil {
		inv.log.Warn("could not record that the network policy agent is still to be told the pod is gone", "error", err)
	}
}

func (inv *invocation) npaPending() bool {
	_, err := os.Stat(inv.npaPendingFile())
	return err == nil
}

func (inv *invocation) clearNPAPending() {
	if err := os.Remove(inv.npaPendingFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		inv.log.Warn("could not remove the network policy agent marker", "error", err)
	}
}

// sweepNPAPending removes the markers of every pod not retried for
// npaPendingMaxAge.
func (inv *invocation) sweepNPAPending(now time.Time) {
	dir := filepath.Dir(inv.lockFile())
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			inv.log.Warn("could not list the network policy agent markers", "error", err)
		}
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), npaPendingPrefix) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < npaPendingMaxAge {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			inv.log.Warn("could not remove an expired network policy agent marker", "file", e.Name(), "error", err)
			continue
		}
		inv.log.Info("removed a network policy agent marker no DEL retried for "+npaPendingMaxAge.String(), "file", e.Name())
	}
}
