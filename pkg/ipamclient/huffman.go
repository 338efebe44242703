package ipamclient

import "fmt"

// HPACK's Huffman code (RFC 7541 Appendix B) is canonical: codes of one
// length are consecutive and follow the symbols' order, and a longer code
// follows every shorter one. The code lengths alone therefore define it,
// and decoding needs a few hundred bytes of tables, not a tree.

// huffmanLen is the code length in bits of each byte value; the EOS
// symbol (256) has huffmanEOSLen.
var huffmanLen = [256]uint8{
	13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
	6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
	13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
	15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
	20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
	22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
	26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
	20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
}

const (
	huffmanEOS    = 256
	huffmanEOSLen = 30
)

// huffmanTables is the canonical code by length: the first code of each
// length, how many codes have it, and where its symbols start in syms.
type huffmanTables struct {
	first  [huffmanEOSLen + 1]uint32
	count  [huffmanEOSLen + 1]uint16
	offset [huffmanEOSLen + 1]uint16
	syms   [257]uint16
}

var huffman = buildHuffman()

func buildHuffman() *huffmanTables {
	t := &huffmanTables{}
	length := func(s int) int {
		if s == huffmanEOS {
			return huffmanEOSLen
		}
		return int(huffmanLen[s])
	}
	for s := 0; s <= huffmanEOS; s++ {
		t.count[length(s)]++
	}
	for n := 1; n <= huffmanEOSLen; n++ {
		t.first[n] = (t.first[n-1] + uint32(t.count[n-1])) << 1
		t.offset[n] = t.offset[n-1] + t.count[n-1]
	}
	next := t.offset
	for s := 0; s <= huffmanEOS; s++ {
		n := length(s)
		t.syms[next[n]] = uint16(s)
		next[n]++
	}
	return t
}

// huffmanDecode decodes a Huffman-coded string of at most max bytes.
func huffmanDecode(p []byte, max int) (string, error) {
	out := make([]byte, 0, len(p)*8/5)
	var code uint32
	n := 0
	for _, b := range p {
		for i := 7; i >= 0; i-- {
			code = code<<1 | uint32(b>>i&1)
			n++
			if d := code - huffman.first[n]; d < uint32(huffman.count[n]) {
				sym := huffman.syms[huffman.offset[n]+uint16(d)]
				if sym == huffmanEOS {
					return "", fmt.Errorf("%w: EOS in a Huffman string", errHpack)
				}
				if len(out) == max {
					return "", fmt.Errorf("%w: string longer than %d bytes", errHpack, max)
				}
				out = append(out, byte(sym))
				code, n = 0, 0
			} else if n == huffmanEOSLen {
				return "", fmt.Errorf("%w: bad Huffman code", errHpack)
			}
		}
	}
	// Padding: fewer than 8 bits, all ones (a prefix of EOS).
	if n > 7 || code != 1<<n-1 {
		return "", fmt.Errorf("%w: bad Huffman padding", errHpack)
	}
	return string(out), nil
}
