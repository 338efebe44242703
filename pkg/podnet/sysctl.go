package podnet

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// setSysctl writes a /proc/sys value in the calling thread's namespace. A
// missing key is ignored: IPv6 may be compiled out or disabled on the node.
// A raw descriptor, as in nsIdentity: an *os.File registers with the
// runtime's poller and unregisters again, four more system calls per key
// on every ADD.
func setSysctl(key, value string) error {
	path := filepath.Join("/proc/sys", key)
	fd, err := openRetryEINTR(path)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", key, value, err)
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(value))
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

func openRetryEINTR(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// setIfaceSysctls applies the IPv6 settings upstream gives every node-side
// interface it creates: no router advertisements, redirects accepted, no
// forwarding by the interface itself.
func setIfaceSysctls(name string) error {
	for _, kv := range [][2]string{
		{"accept_ra", "0"},
		{"accept_redirects", "1"},
		{"forwarding", "0"},
	} {
		if err := setSysctl(filepath.Join("net/ipv6/conf", name, kv[0]), kv[1]); err != nil {
			return err
		}
	}
	return nil
}
