package podnet

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PinnedNetNS is a pod's network namespace held open for an ADD. The
// runtime's CNI_NETNS is a path, and what a path names can change between
// the check that it is no node namespace and the wiring that follows it
// (a symlink or bind mount replaced while ipamd answers): wired through
// the path, the pod's interface, address and default route would land in
// whatever it names by then, the node's own namespace included
// (docs/compatibility.md, "Plugin (aws-cni) and runtime input"). Wired
// through Path, everything goes to the namespace that was checked.
type PinnedNetNS struct {
	fd   int
	id   nsID
	path string
}

// PinNetNS opens the namespace at path and checks it as VerifyNetNS does;
// the errors are VerifyNetNS's. The caller must Close it.
func PinNetNS(path string) (*PinnedNetNS, error) {
	fd, id, err := openNetNS(path)
	if err != nil {
		return nil, err
	}
	return &PinnedNetNS{fd: fd, id: id, path: path}, nil
}

// Path names the pinned namespace for as long as it is open: the
// process's own descriptor, which no other process can redirect.
func (p *PinnedNetNS) Path() string {
	return "/proc/self/fd/" + strconv.Itoa(p.fd)
}

// Named is msg, a message about the namespace wired through Path, with
// the runtime's path in place of Path: the runtime's name is the one its
// user knows.
func (p *PinnedNetNS) Named(msg string) string {
	return strings.ReplaceAll(msg, p.Path(), p.path)
}

// StillNamed returns an error naming the runtime's path when it no longer
// names the pinned namespace: a result printed for it would describe a
// namespace other than the one wired.
func (p *PinnedNetNS) StillNamed() error {
	fd, id, err := nsIdentity(p.path)
	if err != nil {
		return fmt.Errorf("network namespace %s changed while the ADD wired it: %w", p.path, err)
	}
	unix.Close(fd)
	if id != p.id {
		return fmt.Errorf("network namespace %s changed while the ADD wired it: it now names another namespace (the pod was wired in the one it named first)", p.path)
	}
	return nil
}

// Close releases the namespace.
func (p *PinnedNetNS) Close() {
	if p != nil {
		unix.Close(p.fd)
	}
}
