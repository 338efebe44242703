package datastore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// encodeFile is the reference encoder: jsonFile through encoding/json.
// appendFile must write exactly its bytes.
func encodeFile(b *bytes.Buffer, f File) error {
	jf := jsonFile{Version: f.Version, Allocations: make([]jsonAllocation, len(f.Allocations))}
	for i, a := range f.Allocations {
		ja := jsonAllocation{
			NetworkName: a.Key.NetworkName, ContainerID: a.Key.ContainerID, IfName: a.Key.IfName,
			AllocationTimestamp: unixNano(a.AssignedAt),
			Metadata:            &jsonMetadata{a.Meta.K8sPodNamespace, a.Meta.K8sPodName, a.Meta.InterfacesCount},
		}
		if a.Addr.Is4() {
			ja.IPv4 = a.Addr.String()
		} else {
			ja.IPv6 = a.Addr.String()
		}
		jf.Allocations[i] = ja
	}
	for _, c := range f.Cooling {
		jc := jsonCooling{UnassignedTimestamp: unixNano(c.UnassignedAt)}
		if c.Addr.Is4() {
			jc.IPv4 = c.Addr.String()
		} else {
			jc.IPv6 = c.Addr.String()
		}
		jf.Unassigned = append(jf.Unassigned, jc)
	}
	return json.NewEncoder(b).Encode(jf)
}

// appendFile writes byte for byte what encoding/json writes, for keys and
// names that need escaping (quotes, HTML characters, control characters,
// non-ASCII, invalid UTF-8), empty metadata, both families, and empty,
// nil and long lists.
func TestAppendFileMatchesEncodingJSON(t *testing.T) {
	odd := []string{"", "aws-cni", `a"b`, `back\slash`, "<&>", "a<b", "x>y", "p&q", "tab\t", "nl\n", "\x00\x1f", "é漢", "\xff\xfe", "\u2028", "~ !#$%'()*+,-./:;=?@[]^_`{|}"}
	r := rand.New(rand.NewPCG(1, 2))
	pick := func() string { return odd[r.IntN(len(odd))] }
	files := []File{{Version: CheckpointVersion}, {Version: CheckpointVersion, Allocations: []Allocation{}, Cooling: []Cooling{}}}
	for range 200 {
		f := File{Version: CheckpointVersion}
		if r.IntN(10) == 0 {
			f.Version = pick()
		}
		for range r.IntN(5) {
			a := Allocation{Key: Key{pick(), pick(), pick()}, Addr: netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}),
				Meta: Metadata{pick(), pick(), r.IntN(3) - 1}}
			if r.IntN(2) == 0 {
				a.Addr = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.IntN(256))})
			}
			if r.IntN(4) > 0 {
				a.AssignedAt = time.Unix(0, r.Int64())
			}
			f.Allocations = append(f.Allocations, a)
		}
		for range r.IntN(3) {
			c := Cooling{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(r.IntN(256))}), UnassignedAt: time.Unix(0, r.Int64N(1<<62))}
			if r.IntN(2) == 0 {
				c.Addr = netip.MustParseAddr(fmt.Sprintf("fd00::%x", r.IntN(1<<16)))
			}
			f.Cooling = append(f.Cooling, c)
		}
		files = append(files, f)
	}
	for i, f := range files {
		var want bytes.Buffer
		if err := encodeFile(&want, f); err != nil {
			t.Fatal(err)
		}
		got, err := appendFile(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("file %d:\n got  %s\n want %s", i, got, want.Bytes())
		}
	}
}

// BenchmarkEncodeCheckpoint encodes a busy node's checkpoint: 250 live
// pods and 450 cooling addresses, as figure 21 of the bench leaves it.
func BenchmarkEncodeCheckpoint(b *testing.B) {
	f := File{Version: CheckpointVersion}
	now := time.Now()
	for i := range 250 {
		f.Allocations = append(f.Allocations, Allocation{Key: Key{"aws-cni", fmt.Sprintf("0123456789abcdef0123456789abcdef-%d", i), "eth0"},
			Addr: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), AssignedAt: now, Meta: Metadata{"bench", fmt.Sprint("pod-", i), 1}})
	}
	for i := range 450 {
		f.Cooling = append(f.Cooling, Cooling{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), UnassignedAt: now})
	}
	for _, enc := range []struct {
		name string
		fn   func([]byte) ([]byte, error)
	}{
		{"append", func(buf []byte) ([]byte, error) { return appendFile(buf[:0], f) }},
		{"encoding-json", func(buf []byte) ([]byte, error) {
			w := bytes.NewBuffer(buf[:0])
			err := encodeFile(w, f)
			return w.Bytes(), err
		}},
	} {
		b.Run(enc.name, func(b *testing.B) {
			var buf []byte
			b.ReportAllocs()
			for range b.N {
				var err error
				if buf, err = enc.fn(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

// appendBatch writes byte for byte what encoding/json writes for a log
// record: every list empty, nil or not, names that need escaping, both
// families, metadata absent, empty or partial.
func TestAppendBatchMatchesEncodingJSON(t *testing.T) {
	odd := []string{"", "aws-cni", `a"b`, `back\slash`, "<&>", "tab\t", "\x00\x1f", "é漢", "\xff\xfe", "\u2028", "10.0.0.1", "fd00::1"}
	r := rand.New(rand.NewPCG(3, 4))
	pick := func() string { return odd[r.IntN(len(odd))] }
	batches := []logBatch{{}, {Set: []jsonAllocation{}, Cool: []jsonCooling{}, Del: []string{}}}
	for range 300 {
		var lb logBatch
		for range r.IntN(3) {
			a := jsonAllocation{NetworkName: pick(), ContainerID: pick(), IfName: pick(), AllocationTimestamp: r.Int64() - r.Int64()}
			switch r.IntN(3) {
			case 0:
				a.IPv4 = pick()
			case 1:
				a.IPv6 = pick()
			default:
				a.IPv4, a.IPv6 = pick(), pick()
			}
			if r.IntN(3) > 0 {
				a.Metadata = &jsonMetadata{pick(), pick(), r.IntN(3) - 1}
			}
			lb.Set = append(lb.Set, a)
		}
		for range r.IntN(3) {
			lb.Cool = append(lb.Cool, jsonCooling{IPv4: pick(), IPv6: pick(), UnassignedTimestamp: r.Int64N(1 << 62)})
		}
		for range r.IntN(3) {
			lb.Del = append(lb.Del, pick())
		}
		batches = append(batches, lb)
	}
	for i, lb := range batches {
		want, err := json.Marshal(lb)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendBatch(nil, lb)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("batch %d:\n got  %s\n want %s", i, got, want)
		}
	}
}
