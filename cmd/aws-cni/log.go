package main

import (
	"log/slog"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/pluginlog"
)

// newLogger returns the plugin's logger: JSON lines appended to pluginLogFile,
// or stderr when the file is empty, "stderr" or "stdout" — stdout carries
// the CNI result and must hold nothing else. The file is opened on the
// first record or by the returned open, whichever comes first: ADD opens it
// while ipamd answers, off its critical path. If the file cannot be opened
// the logger falls back to stderr and says why.
func newLogger(file, level string) (log *slog.Logger, open func(), closeFn func()) {
	// 0600, rotated and gzipped like ipamd's log, as upstream's plugin does
	// (docs/compatibility.md, "Log files").
	log, f := pluginlog.New(file, level, pluginlog.Rotated)
	return log, f.Open, f.Close
}
