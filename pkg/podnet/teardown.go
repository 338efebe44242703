package podnet

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/plugins/pkg/ns"
)

// Teardown removes the node-side routes and rules of pod's addresses
// (reference §2.6) and, when the pod netns still exists, the pod's veth
// pairs. Deleting the pair from inside the sandbox's own netns is safe even
// when a newer sandbox of the same pod already reuses the host veth name.
// Anything already gone is not an error, so DEL can run any number of times.
func Teardown(ctx context.Context, pod Pod) error {
	var errs []error
	for _, ifc := range pod.Interfaces {
		if ifc.Address == nil {
			continue
		}
		errs = append(errs, removeHostRoutes(ifc.Address, HostTable(ifc.RouteTable)))
	}
	errs = append(errs, deleteContainerLinks(pod))
	return errors.Join(errs...)
}

// deleteContainerLinks removes the pod ends of pod's veths; the host ends go
// with them. A missing netns or link means there is nothing to do.
func deleteContainerLinks(pod Pod) error {
	if pod.NetNS == "" {
		return nil
	}
	err := ns.WithNetNSPath(pod.NetNS, func(ns.NetNS) error {
		var errs []error
		for _, ifc := range pod.Interfaces {
			if ifc.ContainerIf != "" {
				errs = append(errs, deleteLinkByName(ifc.ContainerIf))
			}
		}
		return errors.Join(errs...)
	})
	var notExist ns.NSPathNotExistErr
	var notNS ns.NSPathNotNSErr
	if err == nil || errors.As(err, &notExist) || errors.As(err, &notNS) {
		return nil
	}
	return fmt.Errorf("pod netns %s: %w", pod.NetNS, err)
}
