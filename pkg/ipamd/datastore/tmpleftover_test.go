package datastore

import (
	"os"
	"path/filepath"
	"testing"
)

// TestReplaceRemovesTempFilesOfInterruptedWrites: a process killed while
// it wrote the checkpoint (SIGKILL, OOM) leaves the temp file of that
// write beside it (<name>.tmp*, ours or upstream's). The first write of
// the next process removes such leftovers, so crashes do not pile them up
// in /var/run/aws-node (a tmpfs: node memory); other files stay.
func TestReplaceRemovesTempFilesOfInterruptedWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ipam.json")
	for _, name := range []string{"ipam.json.tmp1234567", "ipam.json.tmp89", "ipam-nic-1.json.tmp42", "other.tmp1"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(`{"version":"vpc-cni-ipam/1","allocations":[`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := NewLogCheckpointer(path)
	c.IdleFold = -1
	if err := c.Write(File{Version: CheckpointVersion}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range []string{"ipam.json.tmp1234567", "ipam.json.tmp89"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s is left beside the checkpoint (stat: %v)", name, err)
		}
	}
	for _, name := range []string{"ipam-nic-1.json.tmp42", "other.tmp1", "ipam.json"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s, not a leftover of this checkpoint, is gone: %v", name, err)
		}
	}
}
