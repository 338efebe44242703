package podnet

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// dumpAttempts bounds retries of netlink dumps the kernel interrupted
// because the table changed underneath them.
const dumpAttempts = 5

// retryDump repeats a netlink dump until it is not interrupted, so callers
// never act on a partial list.
func retryDump[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range dumpAttempts {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}
