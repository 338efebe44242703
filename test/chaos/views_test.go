package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// ipamdView is what ipamd says through introspection: its ENIs, every
// address it holds on them, and which pod holds which address.
type ipamdView struct {
	enis  map[string]map[netip.Addr]bool // ENI → addresses (free or assigned)
	pods  map[string]netip.Addr          // pod name → address
	dupes []string                       // a pod or address seen twice
}

// introspectClient reads ipamd's introspection over the unix socket it
// serves in the node (INTROSPECTION_BIND_ADDRESS=unix:...).
func introspectClient(n *localvpc.Node) *http.Client {
	sock := filepath.Join(filepath.Dir(n.SocketPath()), "introspect.sock")
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
}

func readIPAMD(ctx context.Context, c *http.Client) (ipamdView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://ipamd/v1/enis", nil)
	if err != nil {
		return ipamdView{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return ipamdView{}, fmt.Errorf("introspection: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return ipamdView{}, fmt.Errorf("introspection /v1/enis: status %d: %v", resp.StatusCode, err)
	}
	var cards map[string]introspect.CardENIs
	if err := json.Unmarshal(body, &cards); err != nil {
		return ipamdView{}, fmt.Errorf("introspection /v1/enis: %w", err)
	}
	v := ipamdView{enis: map[string]map[netip.Addr]bool{}, pods: map[string]netip.Addr{}}
	owner := map[netip.Addr]string{}
	for _, card := range cards {
		for id, eni := range card.ENIs {
			addrs := map[netip.Addr]bool{}
			v.enis[id] = addrs
			for _, cidr := range eni.AvailableIPv4Cidrs {
				if cidr.IsPrefix {
					continue // not used in this test (no prefix delegation)
				}
				a, ok := netip.AddrFromSlice(cidr.Cidr.IP.To4())
				if !ok {
					continue
				}
				addrs[a] = true
				for _, ad := range cidr.IPAddresses {
					pod := ad.IPAMMetadata.K8SPodName
					if pod == "" && ad.IPAMKey.NetworkName == "" {
						continue // free or cooling
					}
					ip, err := netip.ParseAddr(ad.Address)
					if err != nil {
						v.dupes = append(v.dupes, fmt.Sprintf("unparsable address %q on %s", ad.Address, id))
						continue
					}
					if other, seen := owner[ip]; seen {
						v.dupes = append(v.dupes, fmt.Sprintf("address %s held by %s and %s", ip, other, pod))
					}
					owner[ip] = pod
					if prev, seen := v.pods[pod]; seen {
						v.dupes = append(v.dupes, fmt.Sprintf("pod %s holds %s and %s", pod, prev, ip))
					}
					v.pods[pod] = ip
				}
			}
		}
	}
	return v, nil
}

// simView is what EC2 (vpcsim) holds for the node.
type simView struct {
	enis     map[string]map[netip.Addr]bool // attached ENI → secondary addresses
	detached []string                       // ENIs of this node not attached (leaked)
}

func readSim(sim *vpcsim.Sim, instanceID string) simView {
	v := simView{enis: map[string]map[netip.Addr]bool{}}
	for _, e := range sim.NetworkInterfaces() {
		switch {
		case e.Attachment != nil && e.Attachment.InstanceID == instanceID:
			addrs := map[netip.Addr]bool{}
			for _, a := range e.SecondaryIPs {
				addrs[a] = true
			}
			v.enis[e.ID] = addrs
		case e.Attachment == nil && e.Tags["node.k8s.amazonaws.com/instance_id"] == instanceID:
			v.detached = append(v.detached, e.ID)
		}
	}
	slices.Sort(v.detached)
	return v
}

// hostPods lists the pods the host has: the host-side links named like a
// pod's veth (prefix eni + 11 hex).
func hostPods(h *netlink.Handle) (map[string]bool, error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list node links: %w", err)
	}
	out := map[string]bool{}
	for _, l := range links {
		name := l.Attrs().Name
		if strings.HasPrefix(name, "eni") && len(name) == len("eni")+11 {
			out[name] = true
		}
	}
	return out, nil
}

// agreement compares the four views (the runtime's, the host's, ipamd's
// and EC2's) and returns every disagreement, empty when they agree.
// liveVeths maps each live pod's host veth name to its pod name.
func agreement(live map[string]netip.Addr, liveVeths map[string]string, host map[string]bool, ip ipamdView, sim simView) []string {
	var bad []string
	bad = append(bad, ip.dupes...)
	for veth, pod := range liveVeths {
		if !host[veth] {
			bad = append(bad, fmt.Sprintf("host: live pod %s has no link %s", pod, veth))
		}
	}
	for veth := range host {
		if _, ok := liveVeths[veth]; !ok {
			bad = append(bad, fmt.Sprintf("host: link %s belongs to no live pod", veth))
		}
	}
	for _, pod := range slices.Sorted(maps.Keys(live)) {
		got, ok := ip.pods[pod]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("lost pod: %s holds %s but ipamd does not know it", pod, live[pod]))
		case got != live[pod]:
			bad = append(bad, fmt.Sprintf("pod %s holds %s but ipamd says %s", pod, live[pod], got))
		}
	}
	for _, pod := range slices.Sorted(maps.Keys(ip.pods)) {
		if _, ok := live[pod]; !ok {
			bad = append(bad, fmt.Sprintf("leaked address: ipamd holds %s for pod %s, which the runtime deleted", ip.pods[pod], pod))
		}
	}
	for _, eni := range slices.Sorted(maps.Keys(ip.enis)) {
		simAddrs, ok := sim.enis[eni]
		if !ok {
			bad = append(bad, fmt.Sprintf("ipamd uses ENI %s, which EC2 has not attached to the node", eni))
			continue
		}
		for a := range ip.enis[eni] {
			if !simAddrs[a] {
				bad = append(bad, fmt.Sprintf("ipamd holds %s on %s, which EC2 has not assigned", a, eni))
			}
		}
		for a := range simAddrs {
			if !ip.enis[eni][a] {
				bad = append(bad, fmt.Sprintf("leaked address: EC2 assigns %s on %s, unknown to ipamd", a, eni))
			}
		}
	}
	for _, eni := range slices.Sorted(maps.Keys(sim.enis)) {
		if _, ok := ip.enis[eni]; !ok {
			bad = append(bad, fmt.Sprintf("leaked ENI: %s is attached to the node but unknown to ipamd", eni))
		}
	}
	for _, eni := range sim.detached {
		bad = append(bad, fmt.Sprintf("leaked ENI: %s is tagged for the node but detached", eni))
	}
	slices.Sort(bad)
	return bad
}
