package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/pluginlog"
)

// newLogger returns JSON lines appended to file, or stderr when file is
// empty, "stderr" or "stdout" (stdout carries the CNI result only). The file
// is opened at the first line logged: a pass-through ADD or a DEL with
// egress off logs nothing and so pays no open.
func newLogger(file, level string) (*slog.Logger, func()) {
	log, f := pluginlog.New(file, level, openAppend)
	return log, f.Close
}

// openAppend opens path for appending, creating it and its directory.
func openAppend(path string) (io.WriteCloser, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
}
