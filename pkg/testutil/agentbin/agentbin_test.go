package agentbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// helperEnv makes this test binary, run again by
// TestMainRemovesTheBinaries, the child that calls Dir, with a stand-in
// for the build.
const helperEnv = "VPC_CNI_AGENTBIN_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		build = func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "ipamd"), []byte("stand-in"), 0o755)
		}
	}
	os.Exit(Main(m))
}

// TestHelperCallsDir is the child's test: it gets the binaries.
func TestHelperCallsDir(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("run by TestMainRemovesTheBinaries")
	}
	if _, err := os.Stat(filepath.Join(Dir(t), "ipamd")); err != nil {
		t.Fatal(err)
	}
}

// A test binary whose tests used Dir leaves nothing in its TMPDIR once it
// ends: every run of the end-to-end tests would leave ~100 MB otherwise.
func TestMainRemovesTheBinaries(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCallsDir$", "-test.v")
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, Env+"=") }),
		helperEnv+"=1", "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHelperCallsDir") {
		t.Fatalf("the child test binary did not get the binaries: %v\n%s", err, out)
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if len(names) > 0 {
		t.Errorf("the test binary left %v in its TMPDIR %s", names, tmp)
	}
}
