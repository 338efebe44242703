package main

import (
	"io"
	"log/slog"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/pluginlog"
	"github.com/vpc-cni/vpc-cni/pkg/logfile"
	"github.com/vpc-cni/vpc-cni/pkg/logfile/gzbackup"
)

// newLogger returns JSON lines appended to file, or stderr when file is
// empty, "stderr" or "stdout" (stdout carries the CNI result only). The file
// is opened at the first line logged: a pass-through ADD or a DEL with
// egress off logs nothing and so pays no open.
func newLogger(file, level string) (*slog.Logger, func()) {
	log, f := pluginlog.New(file, level, openAppend)
	return log, f.Close
}

// openAppend opens path for appending, creating it and its directory: 0600,
// rotated and gzipped like aws-cni's log, as upstream's egress plugin logs
// through the same logger (docs/compatibility.md, "Log files").
func openAppend(path string) (io.WriteCloser, error) {
	return logfile.Open(path, logfile.Options{Compress: gzbackup.Compress})
}
