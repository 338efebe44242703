package main

import (
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/vpc-cni/vpc-cni/pkg/logfile"
)

// newLogger returns the plugin's logger: JSON lines appended to pluginLogFile,
// or stderr when the file is empty, "stderr" or "stdout" — stdout carries
// the CNI result and must hold nothing else. If the file cannot be opened
// the logger falls back to stderr and says why.
func newLogger(file, level string) (*slog.Logger, func()) {
	opts := &slog.HandlerOptions{Level: parseLevel(level)}
	var w io.Writer = os.Stderr
	closeFn := func() {}
	var openErr error
	switch strings.ToLower(file) {
	case "", "stderr", "stdout":
	default:
		// 0600 and rotated like ipamd's log (docs/compatibility.md,
		// "ipamd: configuration and environment variables").
		f, err := logfile.Open(file, logfile.Options{})
		if err != nil {
			openErr = err
			break
		}
		w, closeFn = f, func() { _ = f.Close() }
	}
	log := slog.New(slog.NewJSONHandler(w, opts))
	if openErr != nil {
		log.Warn("cannot open plugin log file; logging to stderr", "file", file, "error", openErr)
	}
	return log, closeFn
}

func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug", "trace":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error", "fatal":
		return slog.LevelError
	}
	return slog.LevelInfo
}
