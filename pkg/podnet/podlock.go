package podnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"golang.org/x/sys/unix"
)

// A pod lock serialises, per pod, an ADD's host wiring with a DEL's "is
// this veth mine" check and the teardown that follows it
// (docs/compatibility.md, "Plugin (aws-cni) and runtime input"): without
// it a late DEL of an old sandbox could check the pod's veth just before
// the new sandbox's ADD wires it, then delete what that ADD made. All
// pods share one lock file (Pod.LockFile); each pod locks one byte of it
// with an open-file-description lock, at an offset hashed from the node's
// network namespace and the pod's veth name, so there are no per-pod files
// to clean up and the kernel drops a lock whose process dies.
//
// Waits are bounded: an ADD that cannot lock within addLockWait, or a DEL
// step within delLockWait, goes on unlocked, as before the lock existed.
//
// A DEL holds the lock across the network policy agent's answer, for at
// most PolicyCallTimeout (see HoldPodLockForDEL), and an ADD starts its
// wait only after that DEL's check: addLockWait outlasts that hold with a
// margin for the answer's way back, so the ADD's enforce never overtakes
// the DEL's delete. A DEL waits as long for that hold of its own
// (delPolicyLockWait), so it outlasts one other DEL's; it never goes on
// unlocked (see HoldPodLockForDEL).
const (
	addLockWait       = PolicyCallTimeout + time.Second
	delLockWait       = time.Second
	delPolicyLockWait = PolicyCallTimeout + time.Second
)

// PolicyCallTimeout bounds one call to the network policy agent, and so
// how long a DEL holds the pod lock across it.
const PolicyCallTimeout = 2 * time.Second

// lockPollMin and lockPollMax bound the pause between attempts to take a
// busy lock: a holder wires or tears down in about a millisecond.
const (
	lockPollMin = 100 * time.Microsecond
	lockPollMax = 5 * time.Millisecond
)

// testHookLockBusy, when set, runs once in a lock wait that found the lock
// busy: tests use it to know a side is blocked.
var testHookLockBusy func()

// podLock is a held pod lock; nil when none is held.
type podLock struct{ fd int }

// lockPod takes the pod lock of the pod whose host veth is hostVeth in the
// lock file path, waiting at most wait, and never past ctx's end: the
// command's own deadline bounds its wait too. It returns nil, and the
// caller goes on unlocked (or gives up, when ctx has ended), when path is
// empty, the file cannot be opened, or the wait ends.
func lockPod(ctx context.Context, path, hostVeth string, wait time.Duration) *podLock {
	l, _ := tryLockPod(ctx, path, hostVeth, wait)
	return l
}

// tryLockPod is lockPod; busy reports that the wait ended with the lock
// still taken by another, rather than no lock being usable at all.
func tryLockPod(ctx context.Context, path, hostVeth string, wait time.Duration) (l *podLock, busy bool) {
	if path == "" || hostVeth == "" {
		return nil, false
	}
	off, ok := lockOffset(hostVeth)
	if !ok {
		return nil, false
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: 1}
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	pause := lockPollMin
	for {
		err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
		if err == nil {
			return &podLock{fd: fd}, false
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EINTR) {
			busy = false
			break
		}
		if !busy && testHookLockBusy != nil {
			testHookLockBusy()
		}
		busy = true
		// The last attempt is at the deadline, not a pause before it.
		left := time.Until(deadline)
		if left <= 0 || ctxEnded(ctx) != nil {
			break
		}
		time.Sleep(min(pause, left))
		pause = min(2*pause, lockPollMax)
	}
	unix.Close(fd)
	return nil, busy
}

// lockVLAN takes the lock of VLAN id vlanID in the lock file path, as
// lockPod takes a pod's: a VLAN id released with one pod's branch ENI can
// go to another pod's within milliseconds, and the two pods' locks do not
// serialise that pod's ADD with the first pod's DEL. Take it after the
// pod lock. Its byte is hashed from the VLAN link's name, which has no
// pod veth's shape, so it is no pod's.
func lockVLAN(ctx context.Context, path string, vlanID int, wait time.Duration) *podLock {
	return lockPod(ctx, path, VLANLinkName(vlanID), wait)
}

// lockWaitEnded is the error of an ADD whose own time ran out while it
// waited for locks it did not get: it ends there rather than wire,
// unlocked, past its deadline.
func lockWaitEnded(ctx context.Context, locks ...*podLock) error {
	for _, l := range locks {
		if err := ctxEnded(ctx); !l.held() && err != nil {
			return fmt.Errorf("wait for the pod lock: %w", err)
		}
	}
	return nil
}

// ctxEnded is ctx.Err(), and context.DeadlineExceeded once ctx's deadline
// has passed: the context's own timer may not have fired yet (on a busy
// node, milliseconds later), and a wait that ended at the deadline must
// not then read as one that ended at its bound.
func ctxEnded(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// held reports whether l is a lock actually held.
func (l *podLock) held() bool { return l != nil }

// unlock releases the lock: closing the file's only descriptor ends its
// open file description and with it the lock.
func (l *podLock) unlock() {
	if l != nil {
		unix.Close(l.fd)
	}
}

// lockOffset is the byte a pod locks: a hash of the calling thread's
// network namespace (the node's) and the hash part of the pod's veth name,
// which is the same under every prefix (netconf's or strict mode's), so an
// ADD and a DEL of the pod lock the same byte whatever mode named its
// veth.
func lockOffset(hostVeth string) (int64, bool) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, false
	}
	h := fnv.New64a()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], st.Dev)
	binary.LittleEndian.PutUint64(b[8:], st.Ino)
	h.Write(b[:])
	key := hostVeth
	if isPodVethName(hostVeth) {
		key = hostVeth[len(hostVeth)-vethname.SuffixLen:]
	}
	h.Write([]byte(key))
	// Offsets stay positive and below off_t's limit.
	return int64(h.Sum64() >> 2), true
}

// testHookRoutesListed, when set, runs in a teardown between its listing
// of the routes to an address and its lookup of their links.
var testHookRoutesListed func()

// testHookOwnerChecked, when set, runs in a teardown between its check
// that what it is about to remove is its sandbox's and the removal.
var testHookOwnerChecked func()

// testHookVLANNameChecked, when set, runs in a branch DEL between its
// check that no other link has the VLAN link's name and its deletion of
// the iif rule of that name.
var testHookVLANNameChecked func()

func ownerChecked() {
	if testHookOwnerChecked != nil {
		testHookOwnerChecked()
	}
}

// HoldPodLockForDEL takes, for a DEL, the pod lock of the pod whose host
// veth is hostVeth in the lock file path, waiting at most
// delPolicyLockWait, and returns what releases it (a no-op when not
// held). A DEL holds it across its "has the pod a newer sandbox" check and
// the network policy agent's answer: a new sandbox's ADD marks its veth
// before it takes the lock and asks the agent to enforce only after it
// released it, so either the check sees the mark or the agent gets the
// ADD's request after the DEL's.
//
// busy reports that the wait ended with the lock still taken: the caller
// must then neither check nor call the agent. Unlocked, its check could
// run just before a new sandbox's ADD marks its veth and its delete reach
// the agent after that ADD's enforce (several late DELs of one pod, each
// holding the lock across a slow agent's answer, outwait a bounded wait).
// A lock busy for so long is held across another DEL's call telling the
// agent the same thing: the agent keeps policies by pod name.
func HoldPodLockForDEL(path, hostVeth string) (release func(), busy bool) {
	l, busy := tryLockPod(context.Background(), path, hostVeth, delPolicyLockWait)
	return l.unlock, busy
}
