package vethname

import (
	"encoding/binary"
	"math/bits"
)

// sha1Sum is SHA-1 (FIPS 180-4, section 6.1) of msg. The veth names need
// SHA-1's exact bytes (upstream's naming), not a secure hash; written here
// because crypto/sha1 links the Go crypto module (its FIPS self-checks,
// AES, DRBG) into a plugin exec'd once per pod (bench/README.md, figure 1).
// TestSHA1MatchesCryptoSHA1 compares it with crypto/sha1.
func sha1Sum(msg []byte) [20]byte {
	h := [5]uint32{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}
	// Padding: 0x80, zeros up to 56 mod 64, the length in bits big-endian.
	n := (len(msg)+8)/64*64 + 64
	buf := make([]byte, n)
	copy(buf, msg)
	buf[len(msg)] = 0x80
	binary.BigEndian.PutUint64(buf[n-8:], uint64(len(msg))*8)

	var w [80]uint32
	for blk := buf; len(blk) > 0; blk = blk[64:] {
		for i := range 16 {
			w[i] = binary.BigEndian.Uint32(blk[4*i:])
		}
		for i := 16; i < 80; i++ {
			w[i] = bits.RotateLeft32(w[i-3]^w[i-8]^w[i-14]^w[i-16], 1)
		}
		a, b, c, d, e := h[0], h[1], h[2], h[3], h[4]
		for i := range 80 {
			var f, k uint32
			switch {
			case i < 20:
				f, k = b&c|^b&d, 0x5A827999
			case i < 40:
				f, k = b^c^d, 0x6ED9EBA1
			case i < 60:
				f, k = b&c|b&d|c&d, 0x8F1BBCDC
			default:
				f, k = b^c^d, 0xCA62C1D6
			}
			t := bits.RotateLeft32(a, 5) + f + e + k + w[i]
			a, b, c, d, e = t, a, bits.RotateLeft32(b, 30), c, d
		}
		h[0] += a
		h[1] += b
		h[2] += c
		h[3] += d
		h[4] += e
	}
	var sum [20]byte
	for i, v := range h {
		binary.BigEndian.PutUint32(sum[4*i:], v)
	}
	return sum
}
