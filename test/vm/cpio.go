package vm

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// Initramfs is the guest's root file system: directories, regular files
// copied from the host, and character devices. It is written as an
// uncompressed newc cpio archive, which the kernel unpacks itself;
// leaving it uncompressed saves the emulated guest the decompression.
type Initramfs struct {
	entries map[string]entry
}

type entry struct {
	mode         uint32 // type and permission bits, as in stat(2)
	hostPath     string // regular files: copied from here
	data         []byte // regular files: or these bytes
	major, minor uint32 // character devices
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

// NewInitramfs returns an archive holding only the root directory.
func NewInitramfs() *Initramfs {
	return &Initramfs{entries: map[string]entry{}}
}

// AddFile puts the host file hostPath at guest path name with permissions
// perm, creating the parent directories.
func (r *Initramfs) AddFile(name, hostPath string, perm os.FileMode) error {
	if _, err := os.Stat(hostPath); err != nil {
		return fmt.Errorf("initramfs file %s: %w", name, err)
	}
	return r.add(name, entry{mode: modeFile | uint32(perm.Perm()), hostPath: hostPath})
}

// AddData puts data at guest path name.
func (r *Initramfs) AddData(name string, data []byte, perm os.FileMode) error {
	return r.add(name, entry{mode: modeFile | uint32(perm.Perm()), data: data})
}

// AddDir creates the guest directory name and its parents.
func (r *Initramfs) AddDir(name string) error {
	return r.add(name, entry{mode: modeDir | 0o755})
}

// AddCharDev creates a character device node.
func (r *Initramfs) AddCharDev(name string, major, minor uint32) error {
	return r.add(name, entry{mode: modeChar | 0o600, major: major, minor: minor})
}

func (r *Initramfs) add(name string, e entry) error {
	clean := strings.TrimPrefix(path.Clean("/"+name), "/")
	if clean == "" {
		return fmt.Errorf("initramfs path %q names the root", name)
	}
	if old, ok := r.entries[clean]; ok && (old.mode != e.mode || e.mode&modeDir == 0) {
		return fmt.Errorf("initramfs path %q added twice", name)
	}
	for dir := path.Dir(clean); dir != "."; dir = path.Dir(dir) {
		if old, ok := r.entries[dir]; ok && old.mode&modeDir == 0 {
			return fmt.Errorf("initramfs path %q: parent %q is not a directory", name, dir)
		}
		r.entries[dir] = entry{mode: modeDir | 0o755}
	}
	r.entries[clean] = e
	return nil
}

// WriteTo writes the archive in newc format; parents come before children.
func (r *Initramfs) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: bufio.NewWriterSize(w, 1<<20)}
	names := make([]string, 0, len(r.entries))
	for n := range r.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		if err := writeEntry(cw, uint32(i+1), n, r.entries[n]); err != nil {
			return cw.n, err
		}
	}
	if err := writeHeader(cw, 0, "TRAILER!!!", entry{}, 0); err != nil {
		return cw.n, err
	}
	return cw.n, cw.w.(*bufio.Writer).Flush()
}

func writeEntry(w *countingWriter, ino uint32, name string, e entry) error {
	data := e.data
	if e.hostPath != "" {
		var err error
		if data, err = os.ReadFile(e.hostPath); err != nil {
			return fmt.Errorf("initramfs file %s: %w", name, err)
		}
	}
	if err := writeHeader(w, ino, name, e, uint32(len(data))); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	return pad(w)
}

// writeHeader writes a newc header: magic and 13 fields of 8 hex digits,
// then the NUL-terminated name, padded to a multiple of 4 bytes.
func writeHeader(w *countingWriter, ino uint32, name string, e entry, size uint32) error {
	nlink := uint32(1)
	if e.mode&modeDir != 0 {
		nlink = 2
	}
	_, err := fmt.Fprintf(w, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\x00",
		ino, e.mode, 0, 0, nlink, 0, size, 0, 0, e.major, e.minor, len(name)+1, 0, name)
	if err != nil {
		return err
	}
	return pad(w)
}

func pad(w *countingWriter) error {
	if n := w.n % 4; n != 0 {
		_, err := w.Write(make([]byte, 4-n))
		return err
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
