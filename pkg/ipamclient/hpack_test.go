package ipamclient

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2/hpack"
)

// The reference for every test here is golang.org/x/net/http2/hpack, the
// HPACK of grpc-go's servers.

func fromRef(fs []hpack.HeaderField) []headerField {
	var out []headerField
	for _, f := range fs {
		out = append(out, headerField{f.Name, f.Value})
	}
	return out
}

func TestStaticTableMatchesReference(t *testing.T) {
	ref := hpack.NewDecoder(4096, nil)
	for i := range len(staticTable) {
		want, err := ref.DecodeFull(appendHpackInt(nil, 7, 0x80, uint64(i+1)))
		if err != nil {
			t.Fatalf("reference decoder, index %d: %v", i+1, err)
		}
		got, err := newHeaderDecoder(1024).decode(appendHpackInt(nil, 7, 0x80, uint64(i+1)))
		if err != nil {
			t.Fatalf("index %d: %v", i+1, err)
		}
		if diff := cmp.Diff(fromRef(want), got); diff != "" {
			t.Errorf("index %d (-reference +ours):\n%s", i+1, diff)
		}
	}
}

func TestHuffmanDecodesWhatTheReferenceEncodes(t *testing.T) {
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	inputs := []string{"", "grpc", "application/grpc", string(all), strings.Repeat("\xff\x00\x7f", 50)}
	for c := range 256 {
		inputs = append(inputs, string([]byte{byte(c)}))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		inputs = append(inputs, string(b))
	}
	for _, in := range inputs {
		got, err := huffmanDecode(hpack.AppendHuffmanString(nil, in), 1<<20)
		if err != nil || got != in {
			t.Fatalf("decode(encode(%q)) = %q, %v", in, got, err)
		}
	}
}

func TestHuffmanRejectsWhatTheReferenceRejects(t *testing.T) {
	for name, p := range map[string][]byte{
		"padding of zeros":      {0x00},                   // '0' (00000) then 000
		"padding of 8 ones":     {0x1f, 0xff},             // 'a'... then a whole byte of ones
		"EOS":                   {0xff, 0xff, 0xff, 0xfc}, // 30 ones, padded
		"longer than the limit": hpack.AppendHuffmanString(nil, strings.Repeat("a", 11)),
	} {
		_, refErr := hpack.HuffmanDecodeToString(p)
		if name == "longer than the limit" {
			refErr = hpack.ErrStringLength
		}
		if _, err := huffmanDecode(p, 10); err == nil || refErr == nil {
			t.Errorf("%s: ours %v, reference %v; both must fail", name, err, refErr)
		}
	}
}

func TestEncodedHeadersDecodeWithTheReference(t *testing.T) {
	fields := []headerField{{":method", "POST"}, {":path", "/rpc.CNIBackend/AddNetwork"}, {"te", "trailers"},
		{"grpc-timeout", "19999999u"}, {"x-long", strings.Repeat("v", 300)}, {strings.Repeat("n", 130), ""}}
	var block []byte
	for _, f := range fields {
		block = appendHeader(block, f.Name, f.Value)
	}
	got, err := hpack.NewDecoder(4096, nil).DecodeFull(block)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fields, fromRef(got)); diff != "" {
		t.Errorf("(-sent +reference decoded):\n%s", diff)
	}
}

// A server's blocks on one connection: indexed, Huffman-coded, with the
// dynamic table carried from block to block, evicting, and resized.
func TestDecodesTheReferenceEncodersBlocks(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	ref := hpack.NewDecoder(4096, nil)
	ours := newHeaderDecoder(1 << 20)
	r := rand.New(rand.NewPCG(3, 4))
	blocks := [][]hpack.HeaderField{
		{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"}},
		{{Name: "grpc-status", Value: "0"}, {Name: "grpc-message", Value: ""}, {Name: "vpc-cni-cause", Value: "pool empty: subnet full"}},
		{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"}},
		{{Name: "grpc-status", Value: "14"}, {Name: "grpc-message", Value: "unavailable%20now"}, {Name: "secret", Value: "x", Sensitive: true}},
	}
	for range 40 {
		var b []hpack.HeaderField
		for range 1 + r.IntN(6) {
			v := make([]byte, r.IntN(900))
			for i := range v {
				v[i] = byte('a' + r.IntN(26))
			}
			b = append(b, hpack.HeaderField{Name: "k" + string(rune('a'+r.IntN(5))), Value: string(v)})
		}
		blocks = append(blocks, b)
	}
	for i, b := range blocks {
		buf.Reset()
		if i == 10 {
			enc.SetMaxDynamicTableSize(512)
		}
		if i == 20 {
			enc.SetMaxDynamicTableSize(4096)
		}
		for _, f := range b {
			if err := enc.WriteField(f); err != nil {
				t.Fatal(err)
			}
		}
		want, err := ref.DecodeFull(buf.Bytes())
		if err != nil {
			t.Fatalf("block %d, reference: %v", i, err)
		}
		got, err := ours.decode(buf.Bytes())
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if diff := cmp.Diff(fromRef(want), got); diff != "" {
			t.Fatalf("block %d (-reference +ours):\n%s", i, diff)
		}
	}
}

func TestRejectsBadBlocks(t *testing.T) {
	for name, p := range map[string][]byte{
		"index 0":               {0x80},
		"index past the tables": {0x80 | 62},
		"truncated integer":     {0x7f},
		"oversized integer":     {0x7f, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"truncated string":      {0x00, 0x05, 'a'},
		"table size above 4096": {0x3f, 0xe2, 0x1f},
	} {
		_, refErr := hpack.NewDecoder(4096, nil).DecodeFull(p)
		if _, err := newHeaderDecoder(1024).decode(p); err == nil || refErr == nil {
			t.Errorf("%s: ours %v, reference %v; both must fail", name, err, refErr)
		}
	}
}
