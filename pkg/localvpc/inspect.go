package localvpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// CheckpointPath is ipamd's checkpoint inside a node (upstream's default).
const CheckpointPath = NodeRunDir + "/ipam.json"

// Checkpoint reads the node's ipamd checkpoint, with the log ipamd keeps
// beside it replayed (docs/compatibility.md, checkpoint), and returns each
// allocation's address by container id.
func (n *Node) Checkpoint() (map[string]netip.Addr, error) {
	f, err := datastore.NewFileCheckpointer(n.HostPath(CheckpointPath)).Read()
	if err != nil {
		return nil, fmt.Errorf("node %s checkpoint: %w", n.Name, err)
	}
	out := make(map[string]netip.Addr, len(f.Allocations))
	for _, a := range f.Allocations {
		out[a.Key.ContainerID] = a.Addr
	}
	return out, nil
}

// ENIs returns the ENIs attached to n in vpcsim, by device index.
func (v *VPC) ENIs(n *Node) []vpcsim.ENIView {
	var out []vpcsim.ENIView
	for _, e := range v.Sim.NetworkInterfaces() {
		if e.Attachment != nil && e.Attachment.InstanceID == n.ID {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Attachment.DeviceIndex < out[j].Attachment.DeviceIndex })
	return out
}

// Holder says which ENI EC2 has an address on (as a secondary address or
// inside a prefix), and that ENI's device index.
type Holder struct {
	ENIID       string
	DeviceIndex int
	Prefix      netip.Prefix // the delegated prefix holding the address, if any
}

// Locate finds the ENI that holds addr in vpcsim, IPv4 or IPv6.
func (v *VPC) Locate(addr netip.Addr) (Holder, error) {
	for _, e := range v.Sim.NetworkInterfaces() {
		dev := -1
		if e.Attachment != nil {
			dev = e.Attachment.DeviceIndex
		}
		if e.PrimaryIP == addr || slices.Contains(e.SecondaryIPs, addr) || slices.Contains(e.IPv6, addr) {
			return Holder{ENIID: e.ID, DeviceIndex: dev}, nil
		}
		for _, p := range slices.Concat(e.Prefixes, e.IPv6Prefixes) {
			if p.Contains(addr) {
				return Holder{ENIID: e.ID, DeviceIndex: dev, Prefix: p}, nil
			}
		}
	}
	return Holder{}, fmt.Errorf("no ENI holds %s", addr)
}

// Serve starts a whoami service on the pod's address; it stops when the
// pod's namespace goes away or the returned closer is closed.
func (p *Pod) Serve() (io.Closer, error) {
	return dataplane.ServeWhoami(p.NetNS, netip.AddrPortFrom(p.IP, dataplane.WhoamiPort))
}

// Whoami connects from the pod to a whoami service at dst and returns the
// source address dst saw, giving up after at most 5 s: short enough for a
// check that expects dst blocked.
func (p *Pod) Whoami(ctx context.Context, dst netip.Addr) (netip.Addr, error) {
	return p.WhoamiWithin(ctx, dst, 5*time.Second)
}

// WhoamiWithin is Whoami giving up after at most bound: a check that
// expects dst reached gives a loaded machine a generous one.
func (p *Pod) WhoamiWithin(ctx context.Context, dst netip.Addr, bound time.Duration) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	return dataplane.Whoami(ctx, p.NetNS, netip.Addr{}, netip.AddrPortFrom(dst, dataplane.WhoamiPort))
}

// SaveLogs copies every node's logs (agent output, ipamd and plugin logs)
// to dst, which outlives Close.
func (v *VPC) SaveLogs(dst string) error {
	var errs []error
	for _, n := range v.Nodes() {
		d := filepath.Join(dst, n.Name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("save logs: %w", err)
		}
		srcs := []string{filepath.Join(n.Dir, "agent.log")}
		if ents, err := os.ReadDir(n.HostPath(NodeLogDir)); err == nil {
			for _, e := range ents {
				srcs = append(srcs, filepath.Join(n.HostPath(NodeLogDir), e.Name()))
			}
		}
		srcs = append(srcs, n.HostPath(CheckpointPath), n.HostPath(filepath.Join(NodeCNIConfDir, ConflistName)))
		for _, s := range srcs {
			data, err := os.ReadFile(s)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err == nil {
				err = os.WriteFile(filepath.Join(d, filepath.Base(s)), data, 0o644)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
