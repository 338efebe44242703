package logfile

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/logfile/gzbackup"
)

// Parameters of TestProcessesShareOneLog and its writer processes.
const (
	sharedLogEnv  = "LOGFILE_TEST_SHARED_LOG" // path; set in a writer process
	sharedLogProc = "LOGFILE_TEST_PROC"       // the writer's number
	sharedMaxSize = 2048
	sharedProcs   = 6
	sharedCalls   = 40 // Writers per process, one per plugin call
	sharedLines   = 4  // lines per Writer
)

// TestProcessesShareOneLog: plugin processes, each opening the log once per
// call as aws-cni does, append to one file at once with a small MaxSize.
// Every line must come out exactly once and whole, in the file or a
// gzipped backup, and no file may pass MaxSize. Before, a process rotated
// by its own count of its writes, so a line written after another process
// renamed the file went into that backup (and was lost with the plain
// backup once it was gzipped), two processes could rotate the same file
// (the second failed its write with ENOENT) or onto one backup name, and
// files passed MaxSize.
func TestProcessesShareOneLog(t *testing.T) {
	if os.Getenv(sharedLogEnv) != "" {
		t.Skip("a writer process runs TestSharedLogWriterProcess only")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin.log")
	var procs []*exec.Cmd
	for i := range sharedProcs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSharedLogWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), sharedLogEnv+"="+path, sharedLogProc+"="+strconv.Itoa(i))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() && out.Len() > 0 {
				t.Logf("writer %d said:\n%s", i, out.String())
			}
		})
		procs = append(procs, cmd)
	}
	for i, cmd := range procs {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}

	seen := map[string]int{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		var b []byte
		switch {
		case e.Name() == "plugin.log":
			b, err = os.ReadFile(p)
		case strings.HasSuffix(e.Name(), ".log.gz"):
			b = gunzip(t, p)
		default:
			t.Errorf("unexpected file %s (a plain backup left, or a stray)", e.Name())
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > sharedMaxSize {
			t.Errorf("%s holds %d bytes, more than MaxSize %d:\n%s", e.Name(), len(b), sharedMaxSize, b)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			seen[sc.Text()]++
		}
	}
	if len(ents) < 3 {
		t.Errorf("%d files: the test did not rotate enough to show anything", len(ents))
	}
	var missing, doubled int
	for p := range sharedProcs {
		for c := range sharedCalls {
			for l := range sharedLines {
				switch n := seen[sharedLine(p, c, l)]; {
				case n == 0:
					missing++
				case n > 1:
					doubled++
				}
				delete(seen, sharedLine(p, c, l))
			}
		}
	}
	if missing > 0 || doubled > 0 || len(seen) > 0 {
		t.Errorf("of %d lines %d missing, %d more than once; %d torn or foreign lines (%.3q)",
			sharedProcs*sharedCalls*sharedLines, missing, doubled, len(seen), keys(seen))
	}
}

// TestSharedLogWriterProcess is one writer process of
// TestProcessesShareOneLog; it does nothing in a normal run.
func TestSharedLogWriterProcess(t *testing.T) {
	path := os.Getenv(sharedLogEnv)
	if path == "" {
		t.Skip("run by TestProcessesShareOneLog")
	}
	p, _ := strconv.Atoi(os.Getenv(sharedLogProc))
	for c := range sharedCalls {
		w, err := Open(path, Options{MaxSize: sharedMaxSize, MaxBackups: 1 << 20, Compress: gzbackup.Compress})
		if err != nil {
			t.Fatal(err)
		}
		for l := range sharedLines {
			// As a slog handler does: one Write per line; an error
			// loses the line, which the parent counts.
			if _, err := w.Write([]byte(sharedLine(p, c, l) + "\n")); err != nil {
				t.Logf("write: %v", err)
			}
		}
		if err := w.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	}
}

func sharedLine(proc, call, line int) string {
	return fmt.Sprintf(`{"proc":%d,"call":%d,"line":%d,"pad":"%s"}`, proc, call, line, strings.Repeat("x", 40))
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
