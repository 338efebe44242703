// Command floor is the kernel floor of a CNI plugin for the bench: a
// trivial static binary that wires (CNI_COMMAND=ADD) or unwires (DEL) one
// pod with exactly the plugin's netlink wiring (pkg/podnet) and nothing
// else: no CNI library, no gRPC, no logging. The pod's address, host veth
// name and route table come from FLOOR_IP, FLOOR_VETH and FLOOR_TABLE.
// Build it like the plugin: CGO_ENABLED=0.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"

	"github.com/vpc-cni/vpc-cni/pkg/podnet"
)

func init() { runtime.LockOSThread() }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run() error {
	ip := net.ParseIP(os.Getenv("FLOOR_IP"))
	if ip == nil {
		return fmt.Errorf("FLOOR_IP %q is not an IP address", os.Getenv("FLOOR_IP"))
	}
	table, err := strconv.Atoi(os.Getenv("FLOOR_TABLE"))
	if err != nil {
		return fmt.Errorf("FLOOR_TABLE: %w", err)
	}
	bits := 32
	if ip.To4() == nil {
		bits = 128
	}
	// Sandbox: the plugin marks its host veth with the sandbox, so the floor does too.
	pod := podnet.Pod{NetNS: os.Getenv("CNI_NETNS"), Sandbox: os.Getenv("CNI_CONTAINERID"), MTU: 9001, Interfaces: []podnet.Interface{{
		HostVeth: os.Getenv("FLOOR_VETH"), ContainerIf: os.Getenv("CNI_IFNAME"),
		Address: &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, RouteTable: table,
	}}}
	ctx := context.Background()
	switch c := os.Getenv("CNI_COMMAND"); c {
	case "ADD":
		return podnet.Setup(ctx, pod)
	case "DEL":
		return podnet.Teardown(ctx, pod)
	default:
		return fmt.Errorf("CNI_COMMAND %q: only ADD and DEL", c)
	}
}
