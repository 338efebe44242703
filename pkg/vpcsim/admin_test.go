package vpcsim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func doJSON(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

func TestAdminAPI(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	var v vpcsim.InstanceView
	if code := doJSON(t, "POST", env.AdminURL+"/instances", `{"type":"t3.medium","subnet":"`+simtest.NodeSubnetBID+`","tags":{"Name":"node-2"}}`, &v); code != 201 {
		t.Fatalf("POST /instances: %d", code)
	}
	if v.Type != "t3.medium" || v.AZ != "us-west-2b" || len(v.ENIs) != 1 || v.ENIs[0].Attachment.DeviceIndex != 0 {
		t.Fatalf("new instance: %+v", v)
	}
	var got vpcsim.InstanceView
	if code := doJSON(t, "GET", env.AdminURL+"/instances/"+v.ID, "", &got); code != 200 || got.PrimaryIP != v.PrimaryIP {
		t.Fatalf("GET /instances/{id}: %d %+v", code, got)
	}
	var st vpcsim.State
	doJSON(t, "GET", env.AdminURL+"/state", "", &st)
	if len(st.Instances) != 2 || len(st.NetworkInterfaces) != 2 || len(st.Subnets) != 5 {
		t.Fatalf("state: %d instances, %d ENIs, %d subnets", len(st.Instances), len(st.NetworkInterfaces), len(st.Subnets))
	}
	if code := doJSON(t, "DELETE", env.AdminURL+"/instances/"+v.ID, "", nil); code != 204 {
		t.Fatalf("DELETE: %d", code)
	}
	if code := doJSON(t, "DELETE", env.AdminURL+"/instances/i-00000000000000bad", "", nil); code != 404 {
		t.Fatalf("DELETE unknown: %d", code)
	}
	if n := len(env.Sim.NetworkInterfaces()); n != 1 {
		t.Fatalf("ENIs after terminate: %d", n)
	}
	var bad map[string]string
	if code := doJSON(t, "POST", env.AdminURL+"/instances", `{"type":"m5.gigantic","subnet":"`+simtest.NodeSubnetID+`"}`, &bad); code != 400 || !strings.Contains(bad["error"], "m5.gigantic") {
		t.Fatalf("bad instance type: %d %v", code, bad)
	}

	var f vpcsim.Faults
	if code := doJSON(t, "PUT", env.AdminURL+"/faults", `{"attachDelay":"2s","latency":{"*":"5ms"},"throttle":{"enabled":true},"errors":[{"action":"CreateTags","code":"InternalError","rate":0.5}]}`, &f); code != 200 {
		t.Fatalf("PUT /faults: %d", code)
	}
	if got := env.Sim.Faults(); got.AttachDelay.String() != "2s" || !got.Throttle.Enabled || len(got.Errors) != 1 {
		t.Fatalf("faults after PUT: %+v", got)
	}
	for _, body := range []string{`{"attachDelay":"soon"}`, `{"errors":[{"action":"X","code":"Y","rate":2}]}`, `{"throttle":{"buckets":{"nope":{"size":1,"refill":1}}}}`, `{"unknown":1}`} {
		var e map[string]string
		if code := doJSON(t, "PUT", env.AdminURL+"/faults", body, &e); code != 400 || e["error"] == "" {
			t.Errorf("PUT /faults %s: %d %v", body, code, e)
		}
	}
	var stats vpcsim.Stats
	if code := doJSON(t, "GET", env.AdminURL+"/stats", "", &stats); code != 200 || stats.Calls == nil {
		t.Fatalf("GET /stats: %d %+v", code, stats)
	}
}

func TestIMDSByRemoteAddr(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	v2, err := env.Sim.RunInstance(vpcsim.InstanceSpec{Type: "m5.large", Subnet: simtest.NodeSubnetBID})
	if err != nil {
		t.Fatal(err)
	}
	h := env.Sim.IMDSHandlerByRemoteAddr()
	get := func(remote string) (int, string) {
		req := httptest.NewRequest("GET", "/latest/meta-data/instance-id", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	one, _ := env.Sim.Instance(simtest.InstanceID)
	if code, body := get(one.PrimaryIP.String() + ":4242"); code != 200 || body != simtest.InstanceID {
		t.Fatalf("node 1: %d %q", code, body)
	}
	if code, body := get(v2.PrimaryIP.String() + ":4242"); code != 200 || body != v2.ID {
		t.Fatalf("node 2: %d %q", code, body)
	}
	if code, _ := get("10.9.9.9:1"); code != http.StatusForbidden {
		t.Fatalf("unknown source: %d", code)
	}
	// a token is bound to the instance that asked for it
	req := httptest.NewRequest("PUT", "/latest/api/token", nil)
	req.RemoteAddr = one.PrimaryIP.String() + ":1"
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	tok := rec.Body.String()
	req = httptest.NewRequest("GET", "/latest/meta-data/instance-id", nil)
	req.RemoteAddr = v2.PrimaryIP.String() + ":1"
	req.Header.Set("X-aws-ec2-metadata-token", tok)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("token of node 1 used by node 2: %d", rec.Code)
	}
}
