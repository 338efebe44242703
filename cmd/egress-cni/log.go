package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// newLogger returns JSON lines appended to file, or stderr when file is
// empty, "stderr" or "stdout" (stdout carries the CNI result only).
func newLogger(file, level string) (*slog.Logger, func()) {
	lvl := slog.LevelInfo
	switch strings.ToLower(level) {
	case "debug", "trace":
		lvl = slog.LevelDebug
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error", "fatal":
		lvl = slog.LevelError
	}
	var w io.Writer = os.Stderr
	closeFn := func() {}
	var openErr error
	switch strings.ToLower(file) {
	case "", "stderr", "stdout":
	default:
		if openErr = os.MkdirAll(filepath.Dir(file), 0o755); openErr == nil {
			var f *os.File
			if f, openErr = os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); openErr == nil {
				w, closeFn = f, func() { _ = f.Close() }
			}
		}
	}
	log := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))
	if openErr != nil {
		log.Warn("cannot open plugin log file; logging to stderr", "file", file, "err", openErr)
	}
	return log, closeFn
}
