package logfile

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestWithErrorsTo(t *testing.T) {
	var file, stderr bytes.Buffer
	log := slog.New(WithErrorsTo(
		slog.NewJSONHandler(&file, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&stderr, nil),
	)).With("component", "ipamd")
	log.Debug("pool grew")
	log.Error("invalid configuration; refusing to start", "err", "IP_COOLDOWN_PERIOD=\"-1\": must not be negative")
	if n := strings.Count(file.String(), "\n"); n != 2 {
		t.Errorf("file got %d lines, want both:\n%s", n, file.String())
	}
	got := stderr.String()
	if strings.Count(got, "\n") != 1 || !strings.Contains(got, "refusing to start") ||
		!strings.Contains(got, "IP_COOLDOWN_PERIOD") || !strings.Contains(got, `"component":"ipamd"`) {
		t.Errorf("stderr got %q, want only the error line with its attributes", got)
	}
}

func TestWithErrorsToFileLevelAboveError(t *testing.T) {
	// A file at a level above Error still sends errors to stderr.
	var file, stderr bytes.Buffer
	log := slog.New(WithErrorsTo(
		slog.NewJSONHandler(&file, &slog.HandlerOptions{Level: slog.LevelError + 4}),
		slog.NewJSONHandler(&stderr, nil),
	))
	log.Error("boom")
	if file.Len() != 0 || !strings.Contains(stderr.String(), "boom") {
		t.Errorf("file %q stderr %q", file.String(), stderr.String())
	}
}
