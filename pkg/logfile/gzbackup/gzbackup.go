// Package gzbackup compresses a rotated log file, for pkg/logfile's
// Options.Compress (ipamd's and aws-cni's rotated copies are gzipped, as
// upstream's are). It is apart from pkg/logfile so that a binary that
// rotates without compressing links no compress/flate or hash/crc32.
package gzbackup

import (
	"compress/gzip"
	"io"
	"os"
)

// Compress writes src+".gz", with src's permissions, holding src
// compressed. On error it removes the incomplete .gz; src is never removed
// here.
func Compress(src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }() // read-only
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(src+".gz", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	if _, err = io.Copy(zw, in); err == nil {
		err = zw.Close()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(src + ".gz") // incomplete; the caller keeps the plain backup
	}
	return err
}
