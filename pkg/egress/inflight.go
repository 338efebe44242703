package egress

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// An ADD takes its egress address before it wires the pod, and a runtime
// may run GC meanwhile (containerd does not serialise GC with the ADD of a
// new sandbox), whose valid attachments cannot list a sandbox not made
// yet. So an ADD holds the in-flight lock of its container for its whole
// run, and GC removes a container's wiring only while holding that lock
// itself, leaving a container whose ADD holds it for a later GC. Locks
// are flocks on a fixed set of slot files (a container's slot is a hash
// of its chain name) in <dataDir>/.inflight-<network>, beside the store
// host-local reads, so no file is ever removed and the files stay
// bounded; two containers sharing a slot only serialise or postpone.
const inflightSlots = 256

// InFlight is one held in-flight lock.
type InFlight struct{ f *os.File }

// Release drops the lock.
func (l *InFlight) Release() error { return l.f.Close() }

// LockInFlight waits for and takes the in-flight lock of the container
// whose chain is chain, in the store of network under dataDir.
func LockInFlight(network, dataDir, chain string) (*InFlight, error) {
	f, _, err := lockFile(slotPath(network, dataDir, chain), unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	return &InFlight{f: f}, nil
}

// ErrInFlight is WaitInFlight's error when the lock stayed held.
var ErrInFlight = errors.New("the container's in-flight lock slot is still held (by its ADD, a GC, or another container's ADD or DEL sharing the slot)")

// inflightRetry is how often WaitInFlight tries the lock again.
const inflightRetry = 50 * time.Millisecond

// WaitInFlight takes the in-flight lock of the container whose chain is
// chain, as LockInFlight does, but gives up with ErrInFlight when ctx
// ends first. A DEL waits so for its container's ADD: kubelet may DEL a
// sandbox whose ADD timed out while that ADD still runs, and wiring
// removed before the ADD ends would be made again after the DEL.
func WaitInFlight(ctx context.Context, network, dataDir, chain string) (*InFlight, error) {
	name := slotPath(network, dataDir, chain)
	f, err := openSlot(name)
	if err != nil {
		return nil, err
	}
	t := time.NewTicker(inflightRetry)
	defer t.Stop()
	for {
		ok, err := flock(f, name, unix.LOCK_EX|unix.LOCK_NB)
		if err != nil {
			f.Close()
			return nil, err
		}
		if ok {
			return &InFlight{f: f}, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%w (lock %s): %w", ErrInFlight, name, ctx.Err())
		case <-t.C:
		}
	}
}

// slotPath is the lock file of the container whose chain is chain.
func slotPath(network, dataDir, chain string) string {
	h := fnv.New32a()
	h.Write([]byte(chain))
	return filepath.Join(dataDir, ".inflight-"+network, fmt.Sprintf("%02x", h.Sum32()%inflightSlots))
}

// lockFile opens (creating if needed) and flocks name; ok is false, with
// no error, when LOCK_NB found it held.
func lockFile(name string, how int) (*os.File, bool, error) {
	f, err := openSlot(name)
	if err != nil {
		return nil, false, err
	}
	ok, err := flock(f, name, how)
	if err != nil || !ok {
		f.Close()
		return nil, false, err
	}
	return f, true, nil
}

// openSlot opens, creating it and its directory if needed, the lock file
// name.
func openSlot(name string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return nil, fmt.Errorf("egress in-flight locks: %w", err)
	}
	f, err := os.OpenFile(name, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("egress in-flight lock: %w", err)
	}
	return f, nil
}

// flock flocks f, the file name; ok is false, with no error, when LOCK_NB
// found it held.
func flock(f *os.File, name string, how int) (bool, error) {
	var err error
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EWOULDBLOCK):
		return false, nil
	default:
		return false, fmt.Errorf("lock %s: %w", name, err)
	}
}

// Claims are the in-flight locks one GC takes, without waiting, before it
// removes a container's wiring, and holds until it is done (Release), so
// an ADD of that container starting meanwhile waits for it.
type Claims struct {
	network, dataDir string
	held             map[string]*os.File // by slot path
	busy             map[string]bool
}

// NewClaims returns the claims of one GC run of network.
func NewClaims(network, dataDir string) *Claims {
	return &Claims{network: network, dataDir: dataDir, held: map[string]*os.File{}, busy: map[string]bool{}}
}

// Claim reports whether this GC holds the in-flight lock of the container
// whose chain is chain, taking it if no ADD holds it.
func (c *Claims) Claim(chain string) (bool, error) {
	p := slotPath(c.network, c.dataDir, chain)
	if c.held[p] != nil {
		return true, nil
	}
	if c.busy[p] {
		return false, nil
	}
	f, ok, err := lockFile(p, unix.LOCK_EX|unix.LOCK_NB)
	if err != nil || !ok {
		c.busy[p] = err == nil
		return false, err
	}
	c.held[p] = f
	return true, nil
}

// Release drops every lock taken.
func (c *Claims) Release() error {
	var errs []error
	for p, f := range c.held {
		errs = append(errs, f.Close())
		delete(c.held, p)
	}
	return errors.Join(errs...)
}
