package podnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Reasons VerifyNetNS refuses a namespace path. A runtime that passes the
// node's own namespace, or one that does not exist, must never get an
// interface created or deleted there (docs/compatibility.md, "Plugin
// (aws-cni) and runtime input").
var (
	// ErrOwnNetNS: the path is the caller's own (the node's) namespace.
	ErrOwnNetNS = errors.New("is the plugin's own network namespace, not a pod's")
	// ErrNoNetNS: nothing exists at the path.
	ErrNoNetNS = errors.New("does not exist")
	// ErrNotNetNS: the path exists but is not a network namespace.
	ErrNotNetNS = errors.New("is not a network namespace")
	// ErrRelativeNetNS: the path is relative, so what it names depends on
	// the working directory the runtime happened to start the plugin in.
	ErrRelativeNetNS = errors.New("is not an absolute path")
)

// VerifyNetNS checks that path names an existing network namespace other
// than the calling thread's, by an absolute path. The error wraps one of
// ErrOwnNetNS, ErrNoNetNS, ErrNotNetNS or ErrRelativeNetNS and names the
// path.
func VerifyNetNS(path string) error {
	fd, _, err := openNetNS(path)
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// openNetNS opens path as VerifyNetNS checks it and returns the open
// descriptor with the namespace's identity: the checks apply to the file
// the descriptor holds, whatever path names later.
func openNetNS(path string) (int, nsID, error) {
	if path == "" {
		return -1, nsID{}, fmt.Errorf("network namespace path is empty: %w", ErrNoNetNS)
	}
	if !filepath.IsAbs(path) {
		return -1, nsID{}, fmt.Errorf("network namespace %s %w", path, ErrRelativeNetNS)
	}
	fd, target, err := nsIdentity(path)
	if errors.Is(err, os.ErrNotExist) {
		return -1, nsID{}, fmt.Errorf("network namespace %s %w", path, ErrNoNetNS)
	}
	if err != nil {
		return -1, nsID{}, err
	}
	own, err := ownNetNS()
	if err != nil {
		unix.Close(fd)
		return -1, nsID{}, err
	}
	if target == own {
		unix.Close(fd)
		return -1, nsID{}, fmt.Errorf("network namespace %s %w", path, ErrOwnNetNS)
	}
	return fd, target, nil
}

// ownNetNS is the identity of the calling thread's network namespace.
func ownNetNS() (nsID, error) {
	fd, own, err := nsIdentity("/proc/thread-self/ns/net")
	if err != nil {
		return nsID{}, fmt.Errorf("read own network namespace: %w", err)
	}
	unix.Close(fd)
	return own, nil
}

type nsID struct{ dev, ino uint64 }

// nsIdentity opens path and returns the descriptor (the caller closes it)
// with the device and inode that identify the namespace behind it, after
// checking it is a network namespace (nsfs, and a namespace file of type
// net).
//
// The path is runtime input and may name any file. It is opened with
// O_PATH, which runs no driver's or FIFO's open, and only an nsfs file is
// opened for real: opening a device can have effects of its own (a
// watchdog arms, a tape rewinds, a tty becomes the controlling one), and
// opening a FIFO blocks or wakes its writer (docs/compatibility.md,
// "Plugin (aws-cni) and runtime input").
func nsIdentity(path string) (int, nsID, error) {
	// Raw descriptors: an *os.File would try to register them with the
	// runtime's poller, three more system calls on every ADD and DEL.
	pfd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nsID{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(pfd)
	var fs unix.Statfs_t
	if err := unix.Fstatfs(pfd, &fs); err != nil {
		return -1, nsID{}, fmt.Errorf("network namespace %s: %w", path, err)
	}
	if fs.Type != unix.NSFS_MAGIC {
		return -1, nsID{}, fmt.Errorf("network namespace %s %w", path, ErrNotNetNS)
	}
	// setns and NS_GET_NSTYPE refuse an O_PATH descriptor. Reopened
	// through the descriptor, not the path, it is the file just checked
	// whatever the path names by now.
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return -1, nsID{}, fmt.Errorf("network namespace %s: reopen: %w", path, err)
	}
	id, err := fdIdentity(fd, path)
	if err != nil {
		unix.Close(fd)
		return -1, nsID{}, err
	}
	return fd, id, nil
}

// fdIdentity is nsIdentity for fd, an nsfs file opened from path: it
// checks the namespace is a network one and identifies it.
func fdIdentity(fd int, path string) (nsID, error) {
	if t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE); err != nil || t != unix.CLONE_NEWNET {
		return nsID{}, fmt.Errorf("network namespace %s %w", path, ErrNotNetNS)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nsID{}, fmt.Errorf("network namespace %s: %w", path, err)
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

// ownedPair reports whether the link named ifc.ContainerIf in the pod
// namespace is one end of a veth pair whose other end is ifc.HostVeth in
// hostNS: the only link the plugin ever deletes. When it is not, reason
// says why, for the log. Both ends' peer indexes and the host end's
// link-netns id must agree, so a same-named interface of another pod, the
// node's eth0 or lo never match. Call from hostNS.
func ownedPair(hostNS, podNS ns.NetNS, ifc Interface) (link netlink.Link, reason string, err error) {
	var pod netlink.Link
	err = podNS.Do(func(ns.NetNS) error {
		var err error
		pod, err = netlink.LinkByName(ifc.ContainerIf)
		return err
	})
	if isNotFound(err) {
		// Nothing to delete, nothing to explain.
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("find %s in %s: %w", ifc.ContainerIf, podNS.Path(), err)
	}
	host, err := netlink.LinkByName(ifc.HostVeth)
	if isNotFound(err) {
		return nil, fmt.Sprintf("host veth %s, its expected peer, does not exist", ifc.HostVeth), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("find host veth %s: %w", ifc.HostVeth, err)
	}
	if _, ok := host.(*netlink.Veth); !ok {
		return nil, fmt.Sprintf("host link %s is a %s, not a veth", ifc.HostVeth, host.Type()), nil
	}
	podID, err := netlink.GetNetNsIdByFd(int(podNS.Fd()))
	if err != nil {
		return nil, "", fmt.Errorf("netns id of %s: %w", podNS.Path(), err)
	}
	if podID < 0 || host.Attrs().NetNsID != podID {
		return nil, fmt.Sprintf("host veth %s has its peer in another namespace", ifc.HostVeth), nil
	}
	if _, ok := pod.(*netlink.Veth); !ok {
		return nil, fmt.Sprintf("%s in %s is a %s, not a veth", ifc.ContainerIf, podNS.Path(), pod.Type()), nil
	}
	if pod.Attrs().ParentIndex != host.Attrs().Index || host.Attrs().ParentIndex != pod.Attrs().Index {
		return nil, fmt.Sprintf("%s in %s is not the peer of host veth %s", ifc.ContainerIf, podNS.Path(), ifc.HostVeth), nil
	}
	return host, "", nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
