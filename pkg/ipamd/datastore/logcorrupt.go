package datastore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"
)

// Mid-log corruption. A log takes one record at a time, each synced before
// the next is written (logcheckpoint.go), so only the last record can be
// torn: a damaged record with a whole record after it is not a torn tail
// but bit rot or a foreign write, and the records after it (pods that
// still hold their addresses) must not be dropped silently. The read then
// fails naming the log, LogCheckpointer.Read sets the log aside as
// <log>.corrupt-<UTC time>, and ipamd treats the checkpoint as unreadable
// (docs/compatibility.md, "ipamd: checkpoint, logs and readiness").

// LogCorruptError is a log with a damaged record followed by a whole one.
type LogCorruptError struct {
	Log    string // the log file
	Offset int    // the damaged record's byte offset
	Next   int    // the byte offset of the whole record found after it
}

func (e *LogCorruptError) Error() string {
	return fmt.Sprintf("%v log %s: the record at byte offset %d is damaged but a whole record follows at %d (corruption, not a torn tail)",
		ErrCheckpoint, e.Log, e.Offset, e.Next)
}

// Is makes errors.Is(err, ErrCheckpoint) true.
func (e *LogCorruptError) Is(target error) bool { return target == ErrCheckpoint }

// wholeRecordAfter returns the offset of the first whole record that
// starts after from in data, or -1. Every payload is JSON, so a candidate
// must start with '{': that keeps the scan linear on a torn tail (its
// JSON bytes read as a length far beyond the file, its zeros as none).
func wholeRecordAfter(data []byte, from int) int {
	for i := from + 1; i+9 <= len(data); i++ {
		n := binary.LittleEndian.Uint32(data[i:])
		if n == 0 || uint64(n) > uint64(len(data)-i-8) || data[i+8] != '{' {
			continue
		}
		if crc32.Checksum(data[i+8:i+8+int(n)], crcTable) == binary.LittleEndian.Uint32(data[i+4:]) {
			return i
		}
	}
	return -1
}

// allZero reports whether b holds only zeros.
func allZero(b []byte) bool { return len(bytes.TrimLeft(b, "\x00")) == 0 }

// corruptName is where a damaged log is set aside.
func corruptName(log string, now time.Time) string {
	return log + ".corrupt-" + now.UTC().Format("20060102T150405Z")
}
