package datastore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
)

// CheckpointVersion is upstream's checkpoint format version.
const CheckpointVersion = "vpc-cni-ipam/1"

// DefaultCheckpointPath is upstream's checkpoint of network card 0
// (AWS_VPC_K8S_CNI_BACKING_STORE overrides it).
const DefaultCheckpointPath = hostcontract.CheckpointPath

// CheckpointPath returns the checkpoint path of a network card: card 0 uses
// base; card N>0 replaces a trailing ".json" with "-nic-N.json" (upstream's
// rule), or appends "-nic-N" when base has no .json suffix.
func CheckpointPath(base string, card int) string {
	if card <= 0 {
		return base
	}
	suffix := "-nic-" + strconv.Itoa(card)
	if b, ok := strings.CutSuffix(base, ".json"); ok {
		return b + suffix + ".json"
	}
	return base + suffix
}

// File is the content of a checkpoint. The slices handed to Write are the
// store's write buffers: Write must not keep or modify them after it returns.
type File struct {
	Version     string
	Allocations []Allocation
	// Cooling is our extension (JSON "unassigned"; upstream ignores it).
	Cooling []Cooling
	// extra holds the top-level members this version does not know
	// (unknown.go), written back as read.
	extra string

	// changes, set by the store, names where the lists differ from the
	// File it wrote before (changes.go); nil: not known.
	changes *fileChanges
}

// Checkpointer persists a File. The store calls Write for each batch of
// changes, never two at once, and without holding its lock (group commit);
// Read once at start-up. Read returns an error wrapping
// fs.ErrNotExist when there is no checkpoint (a fresh node).
type Checkpointer interface {
	Write(File) error
	Read() (File, error)
}

// NopCheckpointer persists nothing (Read reports no checkpoint).
type NopCheckpointer struct{}

func (NopCheckpointer) Write(File) error { return nil }

func (NopCheckpointer) Read() (File, error) {
	return File{}, fmt.Errorf("%w: no checkpointer: %w", ErrCheckpoint, fs.ErrNotExist)
}

// MemCheckpointer keeps a deep copy of the last File written; for tests of
// packages built on the store. Err, when set, fails every Write.
type MemCheckpointer struct {
	mu     sync.Mutex
	file   *File
	Err    error
	Writes int
}

func (m *MemCheckpointer) Write(f File) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return fmt.Errorf("%w: write: %w", ErrCheckpoint, m.Err)
	}
	c := File{Version: f.Version, Allocations: slicesClone(f.Allocations), Cooling: slicesClone(f.Cooling), extra: f.extra}
	m.file = &c
	m.Writes++
	return nil
}

func (m *MemCheckpointer) Read() (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.file == nil {
		return File{}, fmt.Errorf("%w: memory: %w", ErrCheckpoint, fs.ErrNotExist)
	}
	return File{Version: m.file.Version, Allocations: slicesClone(m.file.Allocations), Cooling: slicesClone(m.file.Cooling),
		extra: m.file.extra}, nil
}

// SetErr changes the error later Writes fail with (nil: succeed).
func (m *MemCheckpointer) SetErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.Err = err
}

func slicesClone[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}

// FileCheckpointer is the JSON checkpoint in upstream's format at Path,
// replaced atomically: temp file in the same directory, fsync, rename, fsync
// of the directory. One Store uses it (Write reuses a buffer; the Store
// never calls Write twice at once).
type FileCheckpointer struct {
	Path string
	buf  []byte
}

// NewFileCheckpointer returns the checkpointer of path.
func NewFileCheckpointer(path string) *FileCheckpointer { return &FileCheckpointer{Path: path} }

// The JSON shapes of upstream's checkpoint, plus our "unassigned" array.
type jsonFile struct {
	Version     string           `json:"version"`
	Allocations []jsonAllocation `json:"allocations"`
	Unassigned  []jsonCooling    `json:"unassigned,omitempty"`
}

type jsonAllocation struct {
	NetworkName         string        `json:"networkName"`
	ContainerID         string        `json:"containerID"`
	IfName              string        `json:"ifName"`
	IPv4                string        `json:"ipv4,omitempty"`
	IPv6                string        `json:"ipv6,omitempty"`
	AllocationTimestamp int64         `json:"allocationTimestamp"`
	Metadata            *jsonMetadata `json:"metadata,omitempty"`
}

type jsonMetadata struct {
	K8sPodNamespace string `json:"k8sPodNamespace,omitempty"`
	K8sPodName      string `json:"k8sPodName,omitempty"`
	InterfacesCount int    `json:"interfacesCount,omitempty"`
}

type jsonCooling struct {
	IPv4                string `json:"ipv4,omitempty"`
	IPv6                string `json:"ipv6,omitempty"`
	UnassignedTimestamp int64  `json:"unassignedTimestamp"`
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// EncodeFile renders f as upstream's JSON (one object and a newline).
func EncodeFile(f File) ([]byte, error) { return appendFile(nil, f) }

// DecodeFile parses a checkpoint; name is used in errors (usually the path).
// It checks the version, every address, and that no address or key appears
// twice.
func DecodeFile(name string, data []byte) (File, error) {
	var jf jsonFile
	if err := json.Unmarshal(data, &jf); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return File{}, fmt.Errorf("%w %s: corrupt JSON at byte offset %d: %w", ErrCheckpoint, name, se.Offset, err)
		case errors.As(err, &te):
			return File{}, fmt.Errorf("%w %s: unexpected JSON type at byte offset %d: %w", ErrCheckpoint, name, te.Offset, err)
		}
		return File{}, fmt.Errorf("%w %s: %w", ErrCheckpoint, name, err)
	}
	if jf.Version != CheckpointVersion {
		return File{}, fmt.Errorf("%w %s: unsupported version %q (want %q)", ErrCheckpoint, name, jf.Version, CheckpointVersion)
	}
	f := File{Version: jf.Version, Allocations: make([]Allocation, 0, len(jf.Allocations))}
	for i, ja := range jf.Allocations {
		a, err := allocationOf(ja)
		if err != nil {
			return File{}, fmt.Errorf("%w %s: allocation %d (container %q): %w", ErrCheckpoint, name, i, ja.ContainerID, err)
		}
		f.Allocations = append(f.Allocations, a)
	}
	for i, jc := range jf.Unassigned {
		addr, err := parseEntryAddr(jc.IPv4, jc.IPv6)
		if err != nil {
			return File{}, fmt.Errorf("%w %s: unassigned entry %d: %w", ErrCheckpoint, name, i, err)
		}
		f.Cooling = append(f.Cooling, Cooling{Addr: addr, UnassignedAt: fromUnixNano(jc.UnassignedTimestamp)})
	}
	if err := checkEntries(f); err != nil {
		return File{}, fmt.Errorf("%w %s: %w", ErrCheckpoint, name, err)
	}
	if err := keepUnknown(&f, data); err != nil {
		return File{}, fmt.Errorf("%w %s: %w", ErrCheckpoint, name, err)
	}
	return f, nil
}

func parseEntryAddr(v4, v6 string) (netip.Addr, error) {
	switch {
	case v4 != "" && v6 != "":
		return netip.Addr{}, fmt.Errorf("both ipv4 %q and ipv6 %q set", v4, v6)
	case v4 != "":
		a, err := netip.ParseAddr(v4)
		if err != nil || !a.Is4() {
			return netip.Addr{}, fmt.Errorf("invalid ipv4 %q", v4)
		}
		return a, nil
	case v6 != "":
		a, err := netip.ParseAddr(v6)
		if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("invalid ipv6 %q", v6)
		}
		return a, nil
	}
	return netip.Addr{}, errors.New("no ipv4 or ipv6 address")
}

// Write replaces the checkpoint atomically.
func (fc *FileCheckpointer) Write(f File) error {
	var err error
	if fc.buf, err = appendFile(fc.buf[:0], f); err != nil {
		return fmt.Errorf("%w %s: encode: %w", ErrCheckpoint, fc.Path, err)
	}
	if err := writeAtomic(osFS{}, fc.Path, fc.buf, nil); err != nil {
		return fmt.Errorf("%w %s: %w", ErrCheckpoint, fc.Path, err)
	}
	return nil
}

// Read loads and parses the checkpoint, with the records of its log that a
// LogCheckpointer left beside it (none: the file alone); a missing file
// gives an error wrapping fs.ErrNotExist.
func (fc *FileCheckpointer) Read() (File, error) { return readCheckpoint(osFS{}, fc.Path) }
