package datastore

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
)

// memFS is a file system in memory that tells what a power loss would
// keep: a file's content is durable at least up to its last Sync, a
// directory's entries (creations, renames, removals) at least up to its
// last SyncDir, and later changes of either maybe. At step crashAt
// (counting every call that changes something) it crashes: it takes the
// image, where tear says how many of each file's unsynced written bytes
// (appended, or over the zeros of Preallocate) and how many of the
// unsynced directory changes (in order, as a journal keeps them) made it,
// and fails that call and every later one, as a dead process does nothing
// more. With holes set, the bytes that made it are the last of the
// unsynced ones rather than the first: a disk that wrote a later page of
// a write and not an earlier one.
//
// While gate is non-nil, CreateTemp waits for a token on it (or the
// crash): a test holds a fold's file replacement there so that writes
// run while it is under way. While syncs is non-nil, every Sync waits for
// a token on it (or the crash) first, and waiting counts those waiting.
type memFS struct {
	mu      sync.Mutex
	live    map[string]*memInode // path -> inode, as the process sees it
	durable map[string]*memInode // path -> inode, as a power loss leaves it
	steps   int
	crashAt int
	tear    func(unsynced int) int
	holes   bool
	pending []func(map[string]*memInode) // directory changes since the last SyncDir
	image   *memFS                       // once crashed
	dead    chan struct{}                // closed at the crash
	gate    chan struct{}
	syncs   chan struct{}
	waiting int
	temps   int
	inodes  uint64
}

type memInode struct {
	data, synced []byte
	dirty        []memWrite // the writes since the last Sync, in order
	id           uint64
}

// memWrite is one write at off.
type memWrite struct {
	off int
	p   []byte
}

// writeAt puts p at off in *b, growing it with zeros as needed.
func writeAt(b *[]byte, off int, p []byte) {
	if end := off + len(p); end > len(*b) {
		*b = append(*b, make([]byte, end-len(*b))...)
	}
	copy((*b)[off:], p)
}

// torn is the synced content with keep of the unsynced bytes written over
// it: the first keep of them, or with holes the last keep.
func (in *memInode) torn(keep int, holes bool) []byte {
	data := append([]byte(nil), in.synced...)
	total := 0
	for _, w := range in.dirty {
		total += len(w.p)
	}
	from, to := 0, keep
	if holes {
		from, to = total-keep, total
	}
	at := 0
	for _, w := range in.dirty {
		lo, hi := max(from-at, 0), min(to-at, len(w.p))
		if lo < hi {
			writeAt(&data, w.off+lo, w.p[lo:hi])
		}
		at += len(w.p)
	}
	return data
}

func (in *memInode) unsynced() int {
	n := 0
	for _, w := range in.dirty {
		n += len(w.p)
	}
	return n
}

var errCrashed = errors.New("memfs: crashed")

func newMemFS() *memFS {
	return &memFS{live: map[string]*memInode{}, durable: map[string]*memInode{}, dead: make(chan struct{})}
}

// step counts a changing call; it fails once the crash point is reached.
// Called with m.mu held.
func (m *memFS) step() error {
	if m.image != nil {
		return errCrashed
	}
	m.steps++
	if m.steps == m.crashAt {
		m.image = m.snapshot(m.tear)
		close(m.dead)
		return errCrashed
	}
	return nil
}

// snapshot is the durable image; tear (nil: nothing) says how many of a
// file's unsynced appended bytes survive.
func (m *memFS) snapshot(tear func(int) int) *memFS {
	img := newMemFS()
	dir := make(map[string]*memInode, len(m.durable))
	for name, in := range m.durable {
		dir[name] = in
	}
	keep := 0
	if tear != nil {
		keep = tear(len(m.pending))
	}
	for _, op := range m.pending[:keep] {
		op(dir)
	}
	for name, in := range dir {
		data := append([]byte(nil), in.synced...)
		if tear != nil {
			data = in.torn(tear(in.unsynced()), m.holes)
		}
		img.inodes++
		n := &memInode{data: data, synced: append([]byte(nil), data...), id: img.inodes}
		img.live[name], img.durable[name] = n, n
	}
	return img
}

// crashed returns the image of the crash, or of a power loss now.
func (m *memFS) crashed() *memFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.image != nil {
		return m.image
	}
	return m.snapshot(m.tear)
}

type memFile struct {
	m    *memFS
	name string
	in   *memInode
	off  int // where the next Write goes
}

func (m *memFS) Create(name string) (ckptFile, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.step(); err != nil {
		return nil, err
	}
	if _, ok := m.live[name]; ok {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	m.inodes++
	in := &memInode{id: m.inodes}
	m.live[name] = in
	m.pending = append(m.pending, func(d map[string]*memInode) { d[name] = in })
	return &memFile{m: m, name: name, in: in}, nil
}

func (m *memFS) CreateTemp(dir, pattern string) (ckptFile, error) {
	m.mu.Lock()
	if gate := m.gate; gate != nil {
		m.mu.Unlock()
		select {
		case <-gate:
		case <-m.dead:
		}
		m.mu.Lock()
	}
	name := ""
	for name == "" || m.live[name] != nil {
		m.temps++
		name = path.Join(dir, strings.Replace(pattern, "*", fmt.Sprint(m.temps), 1))
	}
	m.mu.Unlock()
	return m.Create(name)
}

func (m *memFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.image != nil {
		return nil, errCrashed
	}
	in, ok := m.live[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return append([]byte(nil), in.data...), nil
}

func (m *memFS) Rename(from, to string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.step(); err != nil {
		return err
	}
	in, ok := m.live[from]
	if !ok {
		return &fs.PathError{Op: "rename", Path: from, Err: fs.ErrNotExist}
	}
	delete(m.live, from)
	m.live[to] = in
	m.pending = append(m.pending, func(d map[string]*memInode) { d[to] = in; delete(d, from) })
	return nil
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.step(); err != nil {
		return err
	}
	if _, ok := m.live[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.live, name)
	m.pending = append(m.pending, func(d map[string]*memInode) { delete(d, name) })
	return nil
}

func (m *memFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.image != nil {
		return nil, errCrashed
	}
	var names []string
	for name := range m.live {
		if path.Dir(name) == dir {
			names = append(names, path.Base(name))
		}
	}
	sort.Strings(names)
	return names, nil
}

// SyncDir makes the directory's entries durable (one directory here).
func (m *memFS) SyncDir(string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.step(); err != nil {
		return err
	}
	m.durable = make(map[string]*memInode, len(m.live))
	for name, in := range m.live {
		m.durable[name] = in
	}
	m.pending = nil
	return nil
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) Write(p []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.m.step(); err != nil {
		return 0, err
	}
	f.write(f.off, p)
	f.off += len(p)
	return len(p), nil
}

// write records a write at off. Called with f.m.mu held.
func (f *memFile) write(off int, p []byte) {
	writeAt(&f.in.data, off, p)
	f.in.dirty = append(f.in.dirty, memWrite{off, append([]byte(nil), p...)})
}

// syncTurn waits for a token of m.syncs, when set.
func (m *memFS) syncTurn() {
	m.mu.Lock()
	gate := m.syncs
	if gate == nil {
		m.mu.Unlock()
		return
	}
	m.waiting++
	m.mu.Unlock()
	select {
	case <-gate:
	case <-m.dead:
	}
	m.mu.Lock()
	m.waiting--
	m.mu.Unlock()
}

func (f *memFile) Sync() error {
	f.m.syncTurn()
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.m.step(); err != nil {
		return err
	}
	f.in.synced = append(f.in.synced[:0], f.in.data...)
	f.in.dirty = nil
	return nil
}

// Preallocate writes the zeros (one step) and syncs them (another), as
// osFile does; the next Write still goes at f.off.
func (f *memFile) Preallocate(size int64) error {
	f.m.mu.Lock()
	if err := f.m.step(); err != nil {
		f.m.mu.Unlock()
		return err
	}
	if end := max(len(f.in.data), f.off); int64(end) < size {
		f.write(end, make([]byte, int(size)-end))
	}
	f.m.mu.Unlock()
	return f.Sync()
}

func (f *memFile) Close() error { return nil }

// names lists the files of the image or file system.
func (m *memFS) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for name := range m.live {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func (m *memFS) FileID(name string) (fileID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.image != nil {
		return fileID{}, errCrashed
	}
	in, ok := m.live[name]
	if !ok {
		return fileID{}, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	return fileID{1, in.id, 0}, nil
}

func (m *memFS) Writable(string) error { return nil }
