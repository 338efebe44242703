package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/conformance"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// podBehind makes a namespace one routed hop behind the node at nodePath,
// holding addr the way a pod does (a /32 on its eth0, everything through the
// node's side of a veth), and removes it when the test ends.
func podBehind(t *testing.T, d *Dataplane, nodePath string, addr netip.Addr) string {
	t.Helper()
	path, err := NewNamedNS(RunPrefix(d.RunID()) + "pod-hops")
	must(t, err)
	t.Cleanup(func() {
		if err := DeleteNamedNS(path); err != nil {
			t.Errorf("delete pod namespace: %v", err)
		}
	})
	podNS, err := netns.GetFromPath(path)
	must(t, err)
	defer podNS.Close()
	withHandle(t, nodePath, func(h *netlink.Handle) error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vethpod"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(podNS)}
		if err := h.LinkAdd(veth); err != nil {
			return fmt.Errorf("veth: %w", err)
		}
		l, err := h.LinkByName("vethpod")
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
		return h.RouteAdd(&netlink.Route{Dst: ipNet(netip.PrefixFrom(addr, 32)), LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK})
	})
	// the node answers ARP for everything the pod sends out, and forwards
	must(t, sysctls(nodePath, [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.ipv4.conf.vethpod.proxy_arp", "1"}}))
	withHandle(t, path, func(h *netlink.Handle) error {
		l, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(addr, 32))}); err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
		return h.RouteAdd(&netlink.Route{Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK})
	})
	return path
}

// imdsCall asks IMDS from inside the namespace at path: a token PUT, or a
// GET of instance-id (with token unless it is "-"). Like whoamiWithin, it
// asks again while a fresh link's neighbour discovery answers EHOSTUNREACH.
// workingIMDS bounds an IMDS call expected to succeed: generous, for a
// loaded CI machine. A call expected to be dropped keeps a short bound,
// since dropped answers only ever time out.
const workingIMDS = 30 * time.Second

func imdsCall(path, method, token string, within time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		body, err := imdsOnce(ctx, path, method, token)
		if !errors.Is(err, unix.EHOSTUNREACH) || ctx.Err() != nil {
			return body, err
		}
		select {
		case <-ctx.Done():
			return body, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func imdsOnce(ctx context.Context, path, method, token string) (string, error) {
	client := http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return DialIn(ctx, path, netip.Addr{}, netip.MustParseAddrPort(addr))
		},
	}}
	url := "http://" + IMDSAddr.String() + "/latest/meta-data/instance-id"
	if method == http.MethodPut {
		url = "http://" + IMDSAddr.String() + "/latest/api/token"
	}
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return "", err
	}
	if method == http.MethodPut {
		req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	} else if token != "-" {
		req.Header.Set("X-aws-ec2-metadata-token", token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, body)
	}
	return string(body), nil
}

// EC2 sends the answer to an IMDSv2 token PUT with the instance's hop limit
// as its IP TTL: with the default of 1 a pod one hop behind its node never
// gets a token (its node forwarding the answer is one hop too many), with 2
// it does; the node itself gets one either way, and IMDSv1 GETs are not
// limited.
func TestPrivilegedIMDSTokenHopLimit(t *testing.T) {
	sim, d, _ := mirroredVPC(t, 0)
	srv := httptest.NewServer(sim.EC2Handler())
	t.Cleanup(srv.Close)
	c := conformance.NewEC2(srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	inst, err := sim.Instance(simtest.InstanceID)
	must(t, err)
	out, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(inst.PrimaryENI), SecondaryPrivateIpAddressCount: aws.Int32(1)})
	must(t, err)
	podIP := netip.MustParseAddr(aws.ToString(out.AssignedPrivateIpAddresses[0].PrivateIpAddress))
	for !slices.Contains(d.RoutedAddresses(inst.PrimaryENI), netip.PrefixFrom(podIP, 32)) {
		select {
		case <-ctx.Done():
			t.Fatalf("the VPC never routed %s to %s", podIP, inst.PrimaryENI)
		case <-time.After(20 * time.Millisecond):
		}
	}
	node := nodeNS(t, d, simtest.InstanceID)
	pod := podBehind(t, d, node, podIP)

	// hop limit 1 (EC2's default): the node gets a token, the pod does not,
	// though its IMDSv1 GET works (so the path itself is fine)
	tok, err := imdsCall(node, http.MethodPut, "", workingIMDS)
	if err != nil {
		t.Fatalf("node, hop limit 1: token PUT: %v", err)
	}
	if id, err := imdsCall(node, http.MethodGet, tok, workingIMDS); err != nil || id != simtest.InstanceID {
		t.Fatalf("node, hop limit 1: GET with its token: %q, %v", id, err)
	}
	if id, err := imdsCall(pod, http.MethodGet, "-", workingIMDS); err != nil || id != simtest.InstanceID {
		t.Fatalf("pod, hop limit 1: IMDSv1 GET: %q, %v; want %s", id, err, simtest.InstanceID)
	}
	if tok, err := imdsCall(pod, http.MethodPut, "", 2*time.Second); err == nil {
		t.Fatalf("pod, hop limit 1: got token %q; want the answer dropped one hop short", tok)
	}

	_, err = c.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(simtest.InstanceID), HttpPutResponseHopLimit: aws.Int32(2)})
	must(t, err)
	tok, err = imdsCall(pod, http.MethodPut, "", workingIMDS)
	if err != nil {
		t.Fatalf("pod, hop limit 2: token PUT: %v", err)
	}
	if id, err := imdsCall(pod, http.MethodGet, tok, workingIMDS); err != nil || id != simtest.InstanceID {
		t.Fatalf("pod, hop limit 2: GET with its token: %q, %v", id, err)
	}
	if _, err := imdsCall(node, http.MethodPut, "", workingIMDS); err != nil {
		t.Fatalf("node, hop limit 2: token PUT: %v", err)
	}
}
