package datastore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ckptFS is what the checkpointers need of a file system: few enough steps
// that a test can put a model behind it that loses, at a simulated crash,
// everything not yet made durable (logcrash_test.go).
type ckptFS interface {
	// Create makes a new file for writing; it fails if name exists.
	Create(name string) (ckptFile, error)
	CreateTemp(dir, pattern string) (ckptFile, error)
	ReadFile(name string) ([]byte, error)
	Rename(from, to string) error
	Remove(name string) error
	// ReadDir lists the names in dir.
	ReadDir(dir string) ([]string, error)
	// SyncDir makes dir's entries (creations, renames, removals) durable.
	SyncDir(dir string) error
	// FileID identifies the file now at name.
	FileID(name string) (fileID, error)
	// Writable fails when no file can be made in dir (a read-only mount).
	Writable(dir string) error
}

// fileID is a file's device, inode and type (an inode number is reused at
// once: a directory made where the file was may get the file's number).
type fileID struct {
	dev, ino uint64
	typ      uint32
}

// ckptFile is a file being written, each Write after the last. Sync makes
// its content durable.
type ckptFile interface {
	Name() string
	Write(p []byte) (int, error)
	Sync() error
	// Preallocate makes the file at least size bytes long, zeros after
	// what was written, and makes that durable; the next Write still goes
	// right after the last one. A write over those zeros then changes no
	// file metadata, so its Sync is a data write and a cache flush rather
	// than a commit of the file system's journal (ext4). A file system
	// where this buys nothing (tmpfs) may skip it.
	Preallocate(size int64) error
	Close() error
}

// osFS is the real file system.
type osFS struct{}

// osFile writes at its own offset (pwrite), not at the end of the file,
// so that writes go over the zeros Preallocate put there.
type osFile struct {
	*os.File
	off int64
}

func (f *osFile) Write(p []byte) (int, error) {
	n, err := f.WriteAt(p, f.off)
	f.off += int64(n)
	return n, err
}

// Sync flushes the data and what reading it back needs (its size), not
// the timestamps: fdatasync.
func (f *osFile) Sync() error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return &fs.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// Preallocate writes the zeros rather than fallocate(2)ing them: ext4
// marks fallocated blocks unwritten, and the first write into each one
// converts it through the journal, the cost preallocating is to avoid.
// In RAM (tmpfs, ramfs) it would only cost memory, so it does nothing.
func (f *osFile) Preallocate(size int64) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &sfs); err != nil {
		return &fs.PathError{Op: "fstatfs", Path: f.Name(), Err: err}
	}
	if sfs.Type == unix.TMPFS_MAGIC || sfs.Type == unix.RAMFS_MAGIC {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	zeros := make([]byte, 64<<10)
	for at := max(st.Size(), f.off); at < size; {
		n := min(int64(len(zeros)), size-at)
		if _, err := f.WriteAt(zeros[:n], at); err != nil {
			return err
		}
		at += n
	}
	return f.Sync()
}

func (osFS) Create(name string) (ckptFile, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &osFile{File: f}, nil
}

func (osFS) CreateTemp(dir, pattern string) (ckptFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &osFile{File: f}, nil
}

func (osFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (osFS) Rename(from, to string) error         { return os.Rename(from, to) }
func (osFS) Remove(name string) error             { return os.Remove(name) }

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, err
}

func (osFS) FileID(name string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		return fileID{}, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return fileID{uint64(st.Dev), st.Ino, st.Mode & unix.S_IFMT}, nil //nolint:unconvert // Dev's type differs by platform
}

func (osFS) Writable(dir string) error {
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return &fs.PathError{Op: "access", Path: dir, Err: err}
	}
	return nil
}

// SyncDir is best effort where the file system refuses to fsync a
// directory; an error opening it is returned.
func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	_ = d.Sync() // best effort: some file systems refuse fsync on directories
	return d.Close()
}

// dirOf is the directory of path ("." for a bare name).
func dirOf(path string) string {
	if dir := filepath.Dir(path); dir != "" {
		return dir
	}
	return "."
}

// writeAtomic replaces path with data: temp file in the same directory,
// sync, rename, sync of the directory (the rename is durable only once the
// directory entry is). renaming, when set, learns the new file's identity
// just before the rename.
func writeAtomic(fsys ckptFS, path string, data []byte, renaming func(fileID)) (err error) {
	dir := dirOf(path)
	tmp, err := fsys.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()             // already failed; the write error is what matters
			_ = fsys.Remove(tmp.Name()) // best effort: do not leave temp files behind
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if renaming != nil {
		id, err := fsys.FileID(tmp.Name())
		if err != nil {
			return err
		}
		renaming(id)
	}
	if err = fsys.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
}
