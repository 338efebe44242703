package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	return writeAtomic(dst, st.Mode().Perm(), func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// writeAtomic writes dst through <dst>.tmp + fsync + rename.
func writeAtomic(dst string, mode os.FileMode, write func(io.Writer) error) (err error) {
	tmp := dst + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp) // best effort; the error that matters is err
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	// OpenFile's mode is filtered by the umask and ignored for an existing
	// tmp file; set it explicitly.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	// Make the rename durable too.
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync() // best effort: the file itself is complete
		d.Close()
	}
	return nil
}
