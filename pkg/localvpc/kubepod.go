package localvpc

import (
	"context"
	"fmt"
	"strings"
)

// ContainerNetNS returns a host-side path to the network namespace of a
// running container of this node, given its CRI id (with or without the
// "containerd://" prefix of a pod's status).
func (k *KubeNode) ContainerNetNS(ctx context.Context, containerID string) (string, error) {
	id := strings.TrimPrefix(containerID, "containerd://")
	out, stderr, err := k.Exec(ctx, nil, nil, k.cfg.Ctr, "--address", "/run/containerd/containerd.sock", "-n", "k8s.io", "tasks", "ls")
	if err != nil {
		return "", fmt.Errorf("node %s: list tasks: %w: %s", k.ID, err, stderr)
	}
	// Lines: TASK PID STATUS. The pid is in the machine's pid namespace.
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == id {
			return "/proc/" + f[1] + "/ns/net", nil
		}
	}
	return "", fmt.Errorf("node %s: no running task %s", k.ID, id)
}

// TagImage tags an image already in the node's containerd with another
// name, as a registry push of a new tag would make it available.
func (k *KubeNode) TagImage(ctx context.Context, src, dst string) error {
	if _, stderr, err := k.Exec(ctx, nil, nil, k.cfg.Ctr, "--address", "/run/containerd/containerd.sock", "-n", "k8s.io", "images", "tag", "--force", src, dst); err != nil {
		return fmt.Errorf("node %s: tag %s as %s: %w: %s", k.ID, src, dst, err, stderr)
	}
	return nil
}
