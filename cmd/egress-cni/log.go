package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// newLogger returns JSON lines appended to file, or stderr when file is
// empty, "stderr" or "stdout" (stdout carries the CNI result only). The file
// is opened at the first line logged: a pass-through ADD or a DEL with
// egress off logs nothing and so pays no open.
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
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(file) {
	case "", "stderr", "stdout":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), func() {}
	}
	w := &lazyFile{path: file}
	return slog.New(slog.NewJSONHandler(w, opts)), w.close
}

// lazyFile appends to path, opened at the first write; stderr if it cannot
// be opened (with a line saying so).
type lazyFile struct {
	path string
	once sync.Once
	f    *os.File
	w    io.Writer
}

func (l *lazyFile) Write(p []byte) (int, error) {
	l.once.Do(l.open)
	return l.w.Write(p)
}

func (l *lazyFile) open() {
	err := os.MkdirAll(filepath.Dir(l.path), 0o755)
	if err == nil {
		l.f, err = os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	}
	if err != nil {
		l.w = os.Stderr
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Warn("cannot open plugin log file; logging to stderr", "file", l.path, "err", err)
		return
	}
	l.w = l.f
}

func (l *lazyFile) close() {
	if l.f != nil {
		_ = l.f.Close()
	}
}
