package ipamd

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
)

// enisAddress is one address row of /v1/enis as upstream's JSON reads.
type enisAddress struct {
	IPAMKey struct {
		NetworkName string `json:"networkName"`
	}
	AssignedTime   time.Time
	UnassignedTime time.Time
}

// getENIsAddress GETs /v1/enis from srv and returns the row of ip.
func getENIsAddress(t *testing.T, srv *httptest.Server, ip string) (enisAddress, bool) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/v1/enis")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var cards map[string]struct {
		ENIs map[string]struct {
			AvailableIPv4Cidrs map[string]struct {
				IPAddresses map[string]enisAddress
			}
		}
	}
	if err := json.Unmarshal(raw, &cards); err != nil {
		t.Fatalf("decode /v1/enis: %v\n%s", err, raw)
	}
	for _, c := range cards {
		for _, e := range c.ENIs {
			for _, ci := range e.AvailableIPv4Cidrs {
				if a, ok := ci.IPAddresses[ip]; ok {
					return a, true
				}
			}
		}
	}
	return enisAddress{}, false
}

// TestCoolingAddressKeepsAssignedTimeInIntrospection: after a pod's ADD
// then DEL, /v1/enis lists its cooling address with the time it was
// assigned and the time it was released, as upstream does. Before, the
// cooling row showed the zero AssignedTime.
func TestCoolingAddressKeepsAssignedTimeInIntrospection(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = time.Hour }})
	srv := httptest.NewServer(introspect.Handler(h.n.Introspection(), slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	h.settle() // the warm pool is filled

	r, err := h.srv.AddNetwork(context.Background(), addReq("web"))
	if err != nil || len(r.IpAllocationMetadata) != 1 {
		t.Fatalf("ADD: %v %+v", err, r)
	}
	ip := r.IpAllocationMetadata[0].Ipv4Addr
	held, ok := getENIsAddress(t, srv, ip)
	if !ok || held.IPAMKey.NetworkName == "" || held.AssignedTime.IsZero() {
		t.Fatalf("after ADD, /v1/enis row of %s: %+v (listed %v); want it held with an AssignedTime", ip, held, ok)
	}

	if _, err := h.srv.DelNetwork(context.Background(), delReq("web")); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	cooling, ok := getENIsAddress(t, srv, ip)
	if !ok {
		t.Fatalf("after DEL, /v1/enis does not list the cooling address %s", ip)
	}
	if cooling.IPAMKey.NetworkName != "" || cooling.UnassignedTime.IsZero() {
		t.Errorf("after DEL, %s: key %q, UnassignedTime %v; want no key and the release time", ip,
			cooling.IPAMKey.NetworkName, cooling.UnassignedTime)
	}
	if !cooling.AssignedTime.Equal(held.AssignedTime) {
		t.Errorf("after DEL, %s shows AssignedTime %v; want its last assignment time %v", ip, cooling.AssignedTime, held.AssignedTime)
	}
}
