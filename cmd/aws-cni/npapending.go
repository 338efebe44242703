package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// npaPendingFile marks a pod whose DEL released its addresses in ipamd but
// could not tell the network policy agent. The plugin is a short-lived
// process and a retried DEL finds the pod unknown to ipamd, so only a file
// beside the pod lock carries the duty to the retry. Its name is the
// hashed pod name, never the runtime's value verbatim.
func (inv *invocation) npaPendingFile() string {
	return filepath.Join(filepath.Dir(inv.lockFile()),
		"npa-pending-"+vethname.Suffix(inv.k8s.PodNamespace, inv.k8s.PodName))
}

func (inv *invocation) markNPAPending() {
	if err := os.WriteFile(inv.npaPendingFile(), nil, 0o600); err != nil {
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
