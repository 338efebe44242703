package logfile

import (
	"bytes"
	"fmt"
	"os"
)

// modeWarning is the message of the line warnMode writes; warnedInTail
// looks for it.
var modeWarning = fmt.Sprintf("log file mode not tightened to %#o; left as it is", Mode)

// warnedInTail reports whether the last opts.ModeWarnedWithin bytes of the
// file (size bytes long) already hold the mode warning. It reads only on a
// host where chmod was refused, one bounded read through a second
// descriptor: the Writer's own is write-only. A file it cannot read gets
// the warning.
func (w *Writer) warnedInTail(size int64) bool {
	within := w.opts.ModeWarnedWithin
	if within <= 0 || size <= 0 {
		return false
	}
	r, err := os.Open(w.path)
	if err != nil {
		return false
	}
	defer func() { _ = r.Close() }() // read-only: nothing to lose
	off := max(size-within, 0)
	buf := make([]byte, size-off)
	n, _ := r.ReadAt(buf, off) // a short read searches what it got
	return bytes.Contains(buf[:n], []byte(`"msg":"`+modeWarning+`"`))
}
