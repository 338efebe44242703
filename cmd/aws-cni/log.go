package main

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/vpc-cni/vpc-cni/pkg/logfile"
)

// newLogger returns the plugin's logger: JSON lines appended to pluginLogFile,
// or stderr when the file is empty, "stderr" or "stdout" — stdout carries
// the CNI result and must hold nothing else. The file is opened on the
// first record or by the returned open, whichever comes first: ADD opens it
// while ipamd answers, off its critical path. If the file cannot be opened
// the logger falls back to stderr and says why.
func newLogger(file, level string) (log *slog.Logger, open func(), closeFn func()) {
	opts := &slog.HandlerOptions{Level: parseLevel(level)}
	switch strings.ToLower(file) {
	case "", "stderr", "stdout":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), func() {}, func() {}
	}
	w := &lazyFile{path: file, opts: opts}
	return slog.New(slog.NewJSONHandler(w, opts)), w.open, w.close
}

// lazyFile is the plugin log file, opened when first needed.
type lazyFile struct {
	path string
	opts *slog.HandlerOptions
	once sync.Once
	w    io.Writer
	f    *logfile.Writer
}

func (l *lazyFile) open() {
	l.once.Do(func() {
		// 0600 and rotated like ipamd's log (docs/compatibility.md,
		// "ipamd: configuration and environment variables").
		f, err := logfile.Open(l.path, logfile.Options{})
		if err != nil {
			l.w = os.Stderr
			slog.New(slog.NewJSONHandler(os.Stderr, l.opts)).Warn("cannot open plugin log file; logging to stderr", "file", l.path, "error", err)
			return
		}
		l.w, l.f = f, f
	})
}

func (l *lazyFile) Write(p []byte) (int, error) {
	l.open()
	return l.w.Write(p)
}

func (l *lazyFile) close() {
	if l.f != nil {
		_ = l.f.Close()
	}
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
