package logfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/logfile/gzbackup"
)

// A plugin's Writer (younger than TidyAfter) that rotates gzips its own
// backup and at most one plain leftover: the ADD that rotates waits for
// this in Close, and each leftover may be a 100 MB file. Before, it gzipped
// every leftover in that one ADD. The others wait for later rotations.
func TestRotatingPluginGzipsOneLeftover(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin.log")
	var plains []string
	for i := range 3 {
		p, _ := leftPartial(t, dir, "plugin", time.Now().Add(-time.Duration(i+1)*time.Hour))
		plains = append(plains, p)
	}
	w, err := Open(path, Options{MaxSize: 100, Compress: gzbackup.Compress})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("p", 59) + "\n"
	mustWrite(t, w, line)
	mustWrite(t, w, line) // rotates
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	left := 0
	for _, p := range plains {
		if _, err := os.Stat(p); err == nil {
			left++
		}
	}
	if left != len(plains)-1 {
		t.Errorf("%d of %d leftovers still plain after one rotation, want %d (one gzipped per rotation)", left, len(plains), len(plains)-1)
	}
	own := 0
	for _, b := range w.Backups() {
		if isGz(b) && string(gunzip(t, b)) == line {
			own++
		}
	}
	if own != 1 {
		t.Errorf("the rotated backup is not gzipped: %v", w.Backups())
	}
}
