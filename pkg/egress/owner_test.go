package egress

import (
	"maps"
	"testing"
)

// TestChainNetworks: each per-pod chain is attributed to the network its
// rules' comment names, from the chain's own rules or the POSTROUTING jump
// alone; a chain whose rules carry no comment is attributed to none.
func TestChainNetworks(t *testing.T) {
	nat := `-P PREROUTING ACCEPT
-P POSTROUTING ACCEPT
-N CNI-E4-aaaa
-N CNI-E4-bbbb
-N CNI-E4-cccc
-N CNI-E4-dddd
-N KUBE-SERVICES
-A POSTROUTING -s 169.254.172.2/32 -m comment --comment "name: \"net-a\" id: \"ctr-a\"" -j CNI-E4-aaaa
-A POSTROUTING -s 169.254.176.2/32 -m comment --comment "name: \"net-b\" id: \"ctr-b\"" -j CNI-E4-bbbb
-A POSTROUTING -m comment --comment "name: \"net-x\" id: \"y\"" -j KUBE-SERVICES
-A CNI-E4-aaaa -d 224.0.0.0/4 -m comment --comment "name: \"net-a\" id: \"ctr-a\"" -j ACCEPT
-A CNI-E4-aaaa -m comment --comment "name: \"net-a\" id: \"ctr-a\"" -j SNAT --to-source 192.0.2.10 --random-fully
-A CNI-E4-cccc -m comment --comment "name: \"net.c_1\" id: \"ctr-c\"" -j SNAT --to-source 192.0.2.10
-A CNI-E4-dddd -j SNAT --to-source 192.0.2.10
`
	want := map[string]string{"CNI-E4-aaaa": "net-a", "CNI-E4-bbbb": "net-b", "CNI-E4-cccc": "net.c_1", "CNI-E4-dddd": ""}
	if got := chainNetworks(nat, V4.ChainPrefix()); !maps.Equal(got, want) {
		t.Errorf("chainNetworks = %q, want %q", got, want)
	}
}
