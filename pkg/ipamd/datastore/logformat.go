package datastore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The checkpoint log (docs/compatibility.md, "Files and paths"): files
// <checkpoint>.log.<generation> beside the checkpoint, each a run of
// records, every record framed as a little-endian uint32 payload length,
// the payload's CRC-32C, and the JSON payload. A record that does not fit
// the file or fails its checksum ends the file: it is a torn tail (a write
// that never returned), so it and what follows are ignored, unless a whole
// record follows it: that is corruption and fails the read
// (logcorrupt.go).
//
// The first record of a log names the checkpoint content it applies to
// (the SHA-256 of the file's bytes) and whether it continues the log of
// the generation before it. Every later record is the set of entries one
// write changed, each given whole (an address's allocation or cooldown,
// or its removal), so replaying a record over a state that already holds
// it changes nothing. Restore reads the checkpoint, then the highest
// generation whose first record names that content, then every later
// generation that continues it.

const logMagic = "vpc-cni-ipam-log/1"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// logHeader is a log's first record.
type logHeader struct {
	Log     string `json:"log"`
	Base    string `json:"base"`
	Follows bool   `json:"follows,omitempty"`
}

// logBatch is one write's changes.
type logBatch struct {
	Set  []jsonAllocation `json:"set,omitempty"`
	Cool []jsonCooling    `json:"cool,omitempty"`
	Del  []string         `json:"del,omitempty"`
}

// logEntry is what the log knows of one address: an allocation, or a
// cooldown (cooling true; at is then the release time).
type logEntry struct {
	cooling bool
	key     Key
	meta    Metadata
	at      int64
	extra   kept   // Allocation.extra
	mark    uint32 // the diff's visit stamp
	pos     int32  // where the last File had it (logdiff.go's posOf)
}

func (e logEntry) same(o logEntry) bool {
	return e.cooling == o.cooling && e.key == o.key && e.meta == o.meta && e.at == o.at && e.extra == o.extra
}

func baseHash(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func logName(path string, gen uint64) string {
	return path + ".log." + strconv.FormatUint(gen, 10)
}

// appendRecord frames payload onto b.
func appendRecord(b, payload []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, crcTable))
	return append(b, payload...)
}

// splitRecords returns the whole records of data, stopping at the first
// torn one.
func splitRecords(data []byte) [][]byte {
	recs, _, _ := scanRecords(data)
	return recs
}

// scanRecords returns the whole records of data up to the first damaged
// one; bad is that record's offset when a whole record follows it
// (logcorrupt.go), else -1 (the log ended or its tail is torn), and next
// is where that whole record starts.
func scanRecords(data []byte) (recs [][]byte, bad, next int) {
	off := 0
	for len(data)-off >= 8 {
		n := binary.LittleEndian.Uint32(data[off:])
		sum := binary.LittleEndian.Uint32(data[off+4:])
		if n == 0 || uint64(n) > uint64(len(data)-off-8) {
			break
		}
		p := data[off+8 : off+8+int(n)]
		if crc32.Checksum(p, crcTable) != sum {
			break
		}
		recs = append(recs, p)
		off += 8 + int(n)
	}
	if off >= len(data) || allZero(data[off:]) {
		return recs, -1, -1
	}
	if next := wholeRecordAfter(data, off); next >= 0 {
		return recs, off, next
	}
	return recs, -1, -1
}

// logGens lists the generations of path's logs, lowest first.
func logGens(fsys ckptFS, path string) ([]uint64, error) {
	names, err := fsys.ReadDir(dirOf(path))
	if err != nil {
		return nil, err
	}
	prefix := filepath.Base(path) + ".log."
	var gens []uint64
	for _, n := range names {
		if s, ok := strings.CutPrefix(n, prefix); ok {
			if g, err := strconv.ParseUint(s, 10, 64); err == nil && strconv.FormatUint(g, 10) == s {
				gens = append(gens, g)
			}
		}
	}
	slices.Sort(gens)
	return gens, nil
}

// parsedLog is a log's header and its later (whole) records; ok is false
// when the file has no valid header.
type parsedLog struct {
	hdr  logHeader
	recs [][]byte
	ok   bool
}

func readLog(fsys ckptFS, path string, gen uint64) (parsedLog, error) {
	name := logName(path, gen)
	data, err := fsys.ReadFile(name)
	if err != nil {
		return parsedLog{}, nil
	}
	recs, bad, next := scanRecords(data)
	var cerr error
	if bad >= 0 {
		cerr = &LogCorruptError{Log: name, Offset: bad, Next: next}
	}
	if len(recs) == 0 {
		return parsedLog{}, cerr
	}
	var h logHeader
	if json.Unmarshal(recs[0], &h) != nil || h.Log != logMagic {
		return parsedLog{}, cerr
	}
	return parsedLog{hdr: h, recs: recs[1:], ok: true}, cerr
}

// logChain returns the logs that apply to a checkpoint of content hash
// base, in order.
func logChain(fsys ckptFS, path, base string) ([]parsedLog, error) {
	gens, err := logGens(fsys, path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	// A damaged log is an error unless its intact header shows that it
	// does not apply.
	start := -1
	var chain []parsedLog
	for i := len(gens) - 1; i >= 0 && start < 0; i-- {
		l, err := readLog(fsys, path, gens[i])
		if err != nil && (!l.ok || l.hdr.Base == base) {
			return nil, err
		}
		if err == nil && l.ok && l.hdr.Base == base {
			start, chain = i, []parsedLog{l}
		}
	}
	if start < 0 {
		return nil, nil
	}
	for i := start + 1; i < len(gens) && gens[i] == gens[i-1]+1; i++ {
		l, err := readLog(fsys, path, gens[i])
		if err != nil && (!l.ok || l.hdr.Follows) {
			return nil, err
		}
		if err != nil || !l.ok || !l.hdr.Follows {
			break
		}
		chain = append(chain, l)
	}
	return chain, nil
}

// readCheckpoint reads the checkpoint at path and replays its log.
func readCheckpoint(fsys ckptFS, path string) (File, error) {
	data, chain, err := readBaseAndLog(fsys, path)
	if err != nil {
		return File{}, err
	}
	f, err := DecodeFile(path, data)
	if err != nil {
		return File{}, err
	}
	if len(chain) == 0 {
		return f, nil
	}
	st, ok := stateOf(f, 0)
	if !ok {
		return File{}, fmt.Errorf("%w %s: an address appears twice, so its log cannot apply", ErrCheckpoint, path)
	}
	for _, l := range chain {
		for i, rec := range l.recs {
			if err := st.apply(rec); err != nil {
				return File{}, fmt.Errorf("%w %s: log record %d: %w", ErrCheckpoint, path, i+1, err)
			}
		}
	}
	out := st.file()
	out.extra = f.extra
	if err := checkEntries(out); err != nil {
		return File{}, fmt.Errorf("%w %s with its log: %w", ErrCheckpoint, path, err)
	}
	return out, nil
}

// foldRaceTries bounds how often a reader starts over because a fold
// replaced the file, or an append changed the log, while it read.
const foldRaceTries = 10

// readBaseAndLog reads the file and the log chain that applies to it. A
// fold that runs meanwhile (ipamd folds in the background) renames a new
// file into place before it removes the old log, so a reader that still
// finds the same file after reading the log read a consistent pair;
// otherwise it starts over.
func readBaseAndLog(fsys ckptFS, path string) ([]byte, []parsedLog, error) {
	for try := 1; ; try++ {
		data, err := fsys.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("%w %s: %w", ErrCheckpoint, path, err)
		}
		chain, err := logChain(fsys, path, baseHash(data))
		var lc *LogCorruptError
		if errors.As(err, &lc) {
			// A read racing ipamd's appends copies the log page by page
			// and may see a record not yet written before one written
			// since, which a second read sees whole; damage that stays
			// is corruption.
			if try < foldRaceTries {
				continue
			}
			return nil, nil, err
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w %s: listing its log: %w", ErrCheckpoint, path, err)
		}
		again, err := fsys.ReadFile(path)
		if err == nil && !bytes.Equal(again, data) && try < foldRaceTries {
			continue
		}
		return data, chain, nil
	}
}

// logState is the checkpoint's content by address.
type logState map[netip.Addr]logEntry

// stateOf indexes f, stamping every entry with mark; ok is false when an
// address appears twice (only a file we did not write can hold that).
func stateOf(f File, mark uint32) (logState, bool) {
	st := make(logState, len(f.Allocations)+len(f.Cooling))
	for i, a := range f.Allocations {
		if _, dup := st[a.Addr]; dup {
			return nil, false
		}
		st[a.Addr] = logEntry{key: a.Key, meta: a.Meta, at: unixNano(a.AssignedAt), extra: a.extra, mark: mark, pos: allocPos(i)}
	}
	for i, c := range f.Cooling {
		if _, dup := st[c.Addr]; dup {
			return nil, false
		}
		st[c.Addr] = logEntry{cooling: true, at: unixNano(c.UnassignedAt), mark: mark, pos: coolPos(i)}
	}
	return st, true
}

// apply replays one batch record.
func (st logState) apply(rec []byte) error {
	var b logBatch
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return err
	}
	for _, d := range b.Del {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return fmt.Errorf("removal of %q: %w", d, err)
		}
		delete(st, a)
	}
	for _, ja := range b.Set {
		a, err := allocationOf(ja)
		if err != nil {
			return err
		}
		st[a.Addr] = logEntry{key: a.Key, meta: a.Meta, at: ja.AllocationTimestamp}
	}
	for _, jc := range b.Cool {
		a, err := parseEntryAddr(jc.IPv4, jc.IPv6)
		if err != nil {
			return err
		}
		st[a] = logEntry{cooling: true, at: jc.UnassignedTimestamp}
	}
	return nil
}

// file renders the state, entries in address order.
func (st logState) file() File {
	addrs := make([]netip.Addr, 0, len(st))
	for a := range st {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	f := File{Version: CheckpointVersion}
	for _, a := range addrs {
		e := st[a]
		if e.cooling {
			f.Cooling = append(f.Cooling, Cooling{Addr: a, UnassignedAt: fromUnixNano(e.at)})
			continue
		}
		f.Allocations = append(f.Allocations, Allocation{Key: e.key, Addr: a, AssignedAt: fromUnixNano(e.at), Meta: e.meta, extra: e.extra})
	}
	return f
}

// allocationOf converts one JSON allocation (DecodeFile's and the log's).
func allocationOf(ja jsonAllocation) (Allocation, error) {
	addr, err := parseEntryAddr(ja.IPv4, ja.IPv6)
	if err != nil {
		return Allocation{}, err
	}
	a := Allocation{
		Key:        Key{NetworkName: ja.NetworkName, ContainerID: ja.ContainerID, IfName: ja.IfName},
		Addr:       addr,
		AssignedAt: fromUnixNano(ja.AllocationTimestamp),
	}
	if ja.Metadata != nil {
		a.Meta = Metadata{ja.Metadata.K8sPodNamespace, ja.Metadata.K8sPodName, ja.Metadata.InterfacesCount}
	}
	return a, nil
}

// jsonAllocationOf is allocationOf's inverse.
func jsonAllocationOf(a Allocation) jsonAllocation {
	ja := jsonAllocation{NetworkName: a.Key.NetworkName, ContainerID: a.Key.ContainerID, IfName: a.Key.IfName,
		AllocationTimestamp: unixNano(a.AssignedAt)}
	setAddr(&ja.IPv4, &ja.IPv6, a.Addr)
	if a.Meta != (Metadata{}) {
		ja.Metadata = &jsonMetadata{a.Meta.K8sPodNamespace, a.Meta.K8sPodName, a.Meta.InterfacesCount}
	}
	return ja
}

func setAddr(v4, v6 *string, a netip.Addr) {
	if a.Is4() {
		*v4 = a.String()
	} else {
		*v6 = a.String()
	}
}
