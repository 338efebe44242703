package main

import (
	"bytes"
	"encoding/json"
	"net"
	"testing"
	"unicode/utf8"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/vpc-cni/vpc-cni/pkg/ipamclient"
)

// TestEncodeResultMatchesLibrary: for every shape of result ADD prints, in
// each version encodeResult writes (types/100's and types/040's), its bytes
// are the CNI library's; other results and versions are left to the
// library.
func TestEncodeResultMatchesLibrary(t *testing.T) {
	k := k8sArgs{PodName: "sample-pod", PodNamespace: "default"}
	shapes := []struct {
		name  string
		meta  []*ipamclient.IPAllocationMetadata
		netns string
		gw    net.IP
		vlan  int
	}{
		{"ipv4", []*ipamclient.IPAllocationMetadata{{Ipv4Addr: "10.0.0.5", DeviceNumber: 2, RouteTableId: 3}}, "/var/run/netns/p", nil, 0},
		{"ipv6", []*ipamclient.IPAllocationMetadata{{Ipv6Addr: "2001:db8::5"}}, "/var/run/netns/p6", nil, 0},
		{"multi-nic", []*ipamclient.IPAllocationMetadata{
			{Ipv4Addr: "10.0.0.5", DeviceNumber: 2, RouteTableId: 3},
			{Ipv4Addr: "10.9.0.5", DeviceNumber: 0, RouteTableId: 10100},
		}, "/var/run/netns/m", nil, 0},
		{"branch", []*ipamclient.IPAllocationMetadata{{Ipv4Addr: "10.1.2.3"}}, "/proc/42/ns/net", net.ParseIP("10.1.0.1"), 7},
		{"escaped netns", []*ipamclient.IPAllocationMetadata{{Ipv4Addr: "10.0.0.6"}}, "/run/netns/<a&b>\"é\\\x01", nil, 0},
	}
	for _, s := range shapes {
		ifs, err := podInterfaces(s.meta, "eni", "eth0", k)
		if err != nil {
			t.Fatal(err)
		}
		res := buildResult(s.netns, ifs, s.gw, "dummycc21c2d7785", s.vlan, 2)
		for _, v := range []string{"1.0.0", "1.1.0", "0.3.0", "0.3.1", "0.4.0"} {
			got, ok := encodeResult(res, v)
			if !ok {
				t.Fatalf("%s %s: encodeResult left ADD's result to the library", s.name, v)
			}
			if want := libraryOutput(t, res, v); !bytes.Equal(got, want) {
				t.Errorf("%s %s:\n got %s\nwant %s", s.name, v, got, want)
			}
		}
	}

	ifs, _ := podInterfaces(shapes[0].meta, "eni", "eth0", k)
	res := buildResult("/var/run/netns/p", ifs, nil, "dummy", 0, 0)
	for _, v := range []string{"0.1.0", "0.2.0", "1.2.0"} {
		if _, ok := encodeResult(res, v); ok {
			t.Errorf("encodeResult wrote version %s, which it does not know", v)
		}
	}
	withMTU := *res
	withMTU.Interfaces = append([]*current.Interface{{Name: "x", Mtu: 1500}}, res.Interfaces...)
	for _, v := range []string{"1.1.0", "0.4.0"} {
		if _, ok := encodeResult(&withMTU, v); ok {
			t.Errorf("encodeResult wrote an interface MTU in %s, which ADD never sets", v)
		}
	}
}

func libraryOutput(t *testing.T, res *current.Result, v string) []byte {
	t.Helper()
	conv, err := res.GetAsVersion(v)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := conv.PrintTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestJSONStringIsMarshals: jsonString writes every byte, every pair of
// bytes and every rune as json.Marshal does, so the result's strings (a
// netns path, names, addresses) stay the library's bytes.
func TestJSONStringIsMarshals(t *testing.T) {
	check := func(s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("json.Marshal(%q): %v", s, err)
		}
		if got := jsonString(s); !bytes.Equal(got, want) {
			t.Fatalf("jsonString(%q) = %s, json.Marshal %s", s, got, want)
		}
	}
	for i := range 1 << 16 {
		check(string([]byte{byte(i)}))
		check(string([]byte{byte(i >> 8), byte(i)}))
	}
	for r := rune(0); r <= utf8.MaxRune; r++ {
		check("a" + string(r) + "<\xed\xa0\x80>")
	}
	check("/var/run/netns/cni-1234&x\u2028\u2029\"\\\b\f\n\r\t\x7f")
}
