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

// ckptFile is a file being written. Sync makes its content durable.
type ckptFile interface {
	Name() string
	Write(p []byte) (int, error)
	Sync() error
	Close() error
}

// osFS is the real file system.
type osFS struct{}

type osFile struct{ *os.File }

// Sync flushes the data and what reading it back needs (its size), not
// the timestamps: fdatasync.
func (f osFile) Sync() error {
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

func (osFS) Create(name string) (ckptFile, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) CreateTemp(dir, pattern string) (ckptFile, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
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
