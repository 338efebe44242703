package vethname

import (
	"crypto/sha1" //nolint:gosec // the reference for a naming hash, not a security use.
	"math/rand/v2"
	"testing"
)

// TestSHA1MatchesCryptoSHA1: every length across the padding's block
// boundaries (55, 56, 63, 64, 119, 120...) and random contents hash as
// crypto/sha1 hashes them.
func TestSHA1MatchesCryptoSHA1(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 600 {
		for range 4 {
			msg := make([]byte, n)
			for i := range msg {
				msg[i] = byte(r.Uint32())
			}
			if got, want := sha1Sum(msg), sha1.Sum(msg); got != want { //nolint:gosec // see import.
				t.Fatalf("sha1Sum of %d bytes %x = %x, crypto/sha1 %x", n, msg, got, want)
			}
		}
	}
}
