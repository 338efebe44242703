package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vpc-cni/vpc-cni/pkg/nodeready"
)

// installFile copies src to dst atomically: a reader of dst sees the old
// file or the complete new one, never a partial binary (kubelet may exec the
// plugin at any moment). The mode of src is kept.
func installFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("install %s: %w", src, err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("install %s: %w", src, err)
	}
	if err := removeLeftovers(dst); err != nil {
		return err
	}
	return nodeready.WriteFile(dst, st.Mode().Perm(), func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// removeLeftovers removes the temporary copies of dst (.<name>.*.tmp,
// nodeready.WriteFile's names) an install killed before its rename left:
// each is a whole binary, and nothing else ever removes them.
func removeLeftovers(dst string) error {
	dir, prefix := filepath.Dir(dst), "."+filepath.Base(dst)+"."
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, prefix) && strings.HasSuffix(n, ".tmp") && len(n) > len(prefix)+len(".tmp") {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("remove the leftover %s: %w", n, err)
			}
		}
	}
	return nil
}
