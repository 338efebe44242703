package podnet

import "testing"

// TestRandomHostMACUniqueLocalUnicast: every drawn MAC is locally
// administered and unicast, and 20000 draws (more host veths than a node
// ever has) never repeat one.
func TestRandomHostMACUniqueLocalUnicast(t *testing.T) {
	seen := make(map[string]bool)
	for range 20000 {
		mac, err := randomHostMAC()
		if err != nil {
			t.Fatal(err)
		}
		if len(mac) != 6 || mac[0]&0x03 != 0x02 {
			t.Fatalf("MAC %s is not a locally administered unicast MAC-48", mac)
		}
		if seen[mac.String()] {
			t.Fatalf("MAC %s drawn twice", mac)
		}
		seen[mac.String()] = true
	}
}
