// Package pluginlog is the CNI plugins' logger: JSON lines in the plugin's
// log file, opened only when first needed, since a plugin exec that logs
// nothing should pay no open (bench/README.md, "Where a churn pair's CPU
// goes").
package pluginlog

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/vpc-cni/vpc-cni/pkg/logfile"
	"github.com/vpc-cni/vpc-cni/pkg/logfile/gzbackup"
)

// Opener opens the log file at path for appending, for a logger at level.
type Opener func(path string, level slog.Level) (io.WriteCloser, error)

// Rotated is the plugins' Opener: 0600, rotated and gzipped like ipamd's
// log, as upstream's plugins log (docs/compatibility.md, "Log files").
// The file's own warning about a refused chmod obeys pluginLogLevel like
// every other warning of the plugin.
func Rotated(path string, level slog.Level) (io.WriteCloser, error) {
	return logfile.Open(path, logfile.Options{Compress: gzbackup.Compress, ModeWarnedWithin: modeWarnedWithin,
		NoModeWarning: level > slog.LevelWarn})
}

// modeWarnedWithin: every ADD/DEL is a new Writer, so a file whose chmod is
// refused would get the warning on every call; one already in the last
// MiB is enough. One bounded read, and only on such a host.
const modeWarnedWithin = 1 << 20

// File is the log file behind a logger, opened by Open or at the first
// record, whichever comes first.
type File struct {
	path   string
	opener Opener
	opts   *slog.HandlerOptions
	once   sync.Once
	w      io.Writer
	c      io.Closer
}

// New returns a logger at level writing JSON lines to file, or to stderr when
// file is empty, "stderr" or "stdout": stdout carries the CNI result and must
// hold nothing else. If open fails the logger falls back to stderr and says
// why there.
func New(file, level string, open Opener) (*slog.Logger, *File) {
	opts := &slog.HandlerOptions{Level: ParseLevel(level)}
	f := &File{path: file, opener: open, opts: opts}
	switch strings.ToLower(file) {
	case "", "stderr", "stdout":
		f.once.Do(func() { f.w = os.Stderr })
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), f
	}
	return slog.New(slog.NewJSONHandler(f, opts)), f
}

// Open opens the file now if no record has yet.
func (f *File) Open() {
	f.once.Do(func() {
		w, err := f.opener(f.path, f.opts.Level.Level())
		if err != nil {
			f.w = os.Stderr
			slog.New(slog.NewJSONHandler(os.Stderr, f.opts)).Warn("cannot open plugin log file; logging to stderr", "file", f.path, "error", err)
			return
		}
		f.w, f.c = w, w
	})
}

func (f *File) Write(p []byte) (int, error) {
	f.Open()
	return f.w.Write(p)
}

// Close closes the file if it was opened.
func (f *File) Close() {
	if f.c != nil {
		_ = f.c.Close()
	}
}

// ParseLevel maps upstream's log level names to slog's. Anything else,
// and an empty level, is debug, as upstream's plugins log
// (docs/compatibility.md, "Environment variables").
func ParseLevel(s string) slog.Level {
	l, _ := parseLevel(s)
	return l
}

// UnknownLevel returns a warning naming s when ParseLevel reads it as
// debug only because it knows no such level (a typo such as "inf" logs
// every debug line), "" otherwise.
func UnknownLevel(s string) string {
	if _, ok := parseLevel(s); ok {
		return ""
	}
	return fmt.Sprintf("pluginLogLevel %q is none of debug, info, warn, error, fatal; logging at debug", s)
}

func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "", "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn", "warning":
		return slog.LevelWarn, true
	case "error", "fatal":
		return slog.LevelError, true
	}
	return slog.LevelDebug, false
}
