package podnet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// setSysctl writes a /proc/sys value in the calling thread's namespace. A
// missing key is ignored: IPv6 may be compiled out or disabled on the node.
func setSysctl(key, value string) error {
	path := filepath.Join("/proc/sys", key)
	err := os.WriteFile(path, []byte(value), 0o644)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("set sysctl %s=%s: %w", key, value, err)
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
