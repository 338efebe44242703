package pluginlog

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
)

type nopCloser struct{ *bytes.Buffer }

func (nopCloser) Close() error { return nil }

// pluginLogLevel (AWS_VPC_K8S_PLUGIN_LOG_LEVEL in the conflist) follows
// upstream's logger: debug, info, warn, error, fatal in any case, and any
// other value, or none, logs at debug.
func TestLevelFromConflist(t *testing.T) {
	for _, tc := range []struct {
		level     string
		wantDebug bool
		wantInfo  bool
	}{
		{"Debug", true, true},
		{"DEBUG", true, true},
		{"", true, true},
		{"verbose", true, true},
		{"Info", false, true},
		{"warn", false, false},
		{"ERROR", false, false},
		{"fatal", false, false},
	} {
		var buf bytes.Buffer
		log, f := New("/var/log/aws-routed-eni/plugin.log", tc.level, func(string, slog.Level) (io.WriteCloser, error) {
			return nopCloser{&buf}, nil
		})
		log.Debug("a debug line")
		log.Info("an info line")
		f.Close()
		if got := strings.Contains(buf.String(), "a debug line"); got != tc.wantDebug {
			t.Errorf("level %q: debug line logged %t, want %t", tc.level, got, tc.wantDebug)
		}
		if got := strings.Contains(buf.String(), "an info line"); got != tc.wantInfo {
			t.Errorf("level %q: info line logged %t, want %t", tc.level, got, tc.wantInfo)
		}
	}
}
