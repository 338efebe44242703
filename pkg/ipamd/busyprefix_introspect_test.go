package ipamd

import (
	"encoding/json"
	"testing"
	"time"
)

// TestReservedAddressIsListedInIntrospection: card 1 keeps 10.0.1.5 of
// its busy /28 from new pods for a multi-NIC pod quarantined on card 0
// and counts it as assigned. Before, /v1/enis showed card 1's
// AssignedIPs one higher than the addresses its CIDR listed as held, with
// no row for 10.0.1.5; now the address has a row in upstream's shape
// naming the quarantined pod, so AssignedIPs equals the rows with a key.
func TestReservedAddressIsListedInIntrospection(t *testing.T) {
	cs, _, quarantined := restoreBusyPrefixQuarantine(t, 30*time.Second)
	n := &IPAM{cards: cs, ready: newLatch()}
	n.ready.set()
	raw, err := json.Marshal(introspection{n}.ENIs())
	if err != nil {
		t.Fatal(err)
	}
	// Decoded as upstream's introspection JSON reads.
	var enis map[string]struct {
		AssignedIPs int
		ENIs        map[string]struct {
			AvailableIPv4Cidrs map[string]struct {
				IPAddresses map[string]struct {
					Address string
					IPAMKey struct {
						NetworkName string `json:"networkName"`
					}
					IPAMMetadata struct {
						K8SPodName string `json:"k8sPodName"`
					}
				}
			}
		}
	}
	if err := json.Unmarshal(raw, &enis); err != nil {
		t.Fatal(err)
	}
	card1 := enis["1"]
	held := 0
	var row *string
	for _, e := range card1.ENIs {
		for _, c := range e.AvailableIPv4Cidrs {
			for ip, a := range c.IPAddresses {
				if a.IPAMKey.NetworkName == "" {
					continue
				}
				held++
				if ip == quarantined.String() {
					row = &a.IPAMMetadata.K8SPodName
				}
			}
		}
	}
	if held != card1.AssignedIPs {
		t.Errorf("card 1: AssignedIPs %d but %d addresses listed as held:\n%s", card1.AssignedIPs, held, raw)
	}
	if row == nil || *row != "multi" {
		t.Errorf("card 1 lists no row for %s naming the quarantined pod \"multi\":\n%s", quarantined, raw)
	}
}
