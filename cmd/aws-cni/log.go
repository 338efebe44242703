package main

import (
	"io"
	"log/slog"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/pluginlog"
	"github.com/vpc-cni/vpc-cni/pkg/logfile"
)

// newLogger returns the plugin's logger: JSON lines appended to pluginLogFile,
// or stderr when the file is empty, "stderr" or "stdout" — stdout carries
// the CNI result and must hold nothing else. The file is opened on the
// first record or by the returned open, whichever comes first: ADD opens it
// while ipamd answers, off its critical path. If the file cannot be opened
// the logger falls back to stderr and says why.
func newLogger(file, level string) (log *slog.Logger, open func(), closeFn func()) {
	log, f := pluginlog.New(file, level, func(path string) (io.WriteCloser, error) {
		// 0600 and rotated like ipamd's log, but rotated copies stay
		// plain: gzip's package inits would run on every exec
		// (docs/compatibility.md, "Log files").
		return logfile.Open(path, logfile.Options{})
	})
	return log, f.Open, f.Close
}
