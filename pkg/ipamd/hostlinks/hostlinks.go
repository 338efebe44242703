// Package hostlinks reads ipamd's view of the node's pod links from the
// kernel of the calling thread's network namespace (ipamd's own, the
// node's): the links by name suffix with their sandbox marks, and the host
// routes to pods. cmd/ipamd serves it to the pool as ipamd.PodLinks; tests
// read a namespace of their own with it.
package hostlinks

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// PodRoute is a host route to one pod address through its host veth.
type PodRoute struct {
	Addr netip.Addr
	Link string
}

// Links lists the links of the calling thread's network namespace, where
// every pod's host veth lives.
type Links struct {
	VethPrefix string // AWS_VPC_K8S_CNI_VETHPREFIX
}

// attempts bounds the reads of one listing that the kernel interrupted
// (NLM_F_DUMP_INTR: a link or route changed during the dump). Veths come
// and go with every pod, so on a busy node a dump is often interrupted;
// acting on a partial list misjudges running pods.
const attempts = 10

// again runs read until no dump of it was interrupted, at most attempts
// times, and returns its last result.
func again[T any](ctx context.Context, read func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range attempts {
		if v, err = read(); !errors.Is(err, netlink.ErrDumpInterrupted) || ctx.Err() != nil {
			return v, err
		}
	}
	return v, err
}

// LinkSuffixes maps each link name's vethname.Suffix to the aliases (the
// sandbox marks our plugin sets) of the links with that suffix.
func (l Links) LinkSuffixes(ctx context.Context) (map[string][]string, error) {
	// One dump, which also carries each link's alias. Every link of a
	// suffix is kept: the kernel's order says nothing of which is the
	// newer (5.10 and 6.1 list links by ifindex hash bucket).
	links, err := again(ctx, netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("listing host links: %w", err)
	}
	suffixes := make(map[string][]string, len(links))
	for _, k := range links {
		name, alias := k.Attrs().Name, k.Attrs().Alias
		if len(name) < vethname.SuffixLen {
			continue
		}
		sfx := name[len(name)-vethname.SuffixLen:]
		suffixes[sfx] = append(suffixes[sfx], alias)
	}
	return suffixes, nil
}

// PodRoutes lists the main table's host routes through a pod veth
// (<ip> dev <prefix>…), as the plugin installs one per pod address. The
// links and the routes are read again together if either dump was
// interrupted, so a route is never matched against a stale link list.
func (l Links) PodRoutes(ctx context.Context) ([]PodRoute, error) {
	return again(ctx, l.podRoutes)
}

func (l Links) podRoutes() ([]PodRoute, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing host links: %w", err)
	}
	names := map[int]string{}
	for _, k := range links {
		if name := k.Attrs().Name; strings.HasPrefix(name, l.VethPrefix) && len(name) > len(l.VethPrefix) {
			names[k.Attrs().Index] = name
		}
	}
	var out []PodRoute
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("listing host routes: %w", err)
		}
		for _, r := range routes {
			name, ok := names[r.LinkIndex]
			if !ok || r.Dst == nil {
				continue
			}
			ones, bits := r.Dst.Mask.Size()
			addr, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok || ones != bits {
				continue
			}
			out = append(out, PodRoute{Addr: addr.Unmap(), Link: name})
		}
	}
	return out, nil
}
