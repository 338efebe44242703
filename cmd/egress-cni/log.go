package main

import (
	"log/slog"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/pluginlog"
)

// newLogger returns JSON lines appended to file, or stderr when file is
// empty, "stderr" or "stdout" (stdout carries the CNI result only). The file
// is opened at the first line logged: a pass-through ADD or a DEL with
// egress off logs nothing and so pays no open. It is rotated like aws-cni's,
// as upstream's egress plugin logs through the same logger.
func newLogger(file, level string) (*slog.Logger, func()) {
	log, f := pluginlog.New(file, level, pluginlog.Rotated)
	return log, f.Close
}
