package main

import (
	"fmt"
	"io"
	"os"

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
	return nodeready.WriteFile(dst, st.Mode().Perm(), func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
