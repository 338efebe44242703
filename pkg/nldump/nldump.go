// Package nldump retries netlink dumps the kernel interrupted because the
// table changed underneath them (NLM_F_DUMP_INTR), so callers never act on
// a partial list. podnet (the plugin) and networkutils (ipamd) share it.
package nldump

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// Attempts bounds the retries of one dump.
const Attempts = 5

// Retry runs the dump f until it is not interrupted, at most Attempts times,
// and returns its last result.
func Retry[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range Attempts {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}
