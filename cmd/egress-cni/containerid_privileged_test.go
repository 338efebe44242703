package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedAddRefusesOverlongContainerID: the SNAT rules carry the
// container ID in their comment, which iptables caps at 255 characters.
// An ADD with a longer CNI_CONTAINERID (aws-cni, first in the chain,
// takes up to 1024) succeeded with the comment cut to 255 characters
// (iptables-restore does so, legacy and nft alike); it must be refused
// up front with code 4 naming
// CNI_CONTAINERID, leaving the pod, the node and the nat table as they
// were and no address held; DEL with it succeeds, twice.
// The longest ID allowed is wired with its comment whole.
func TestPrivilegedAddRefusesOverlongContainerID(t *testing.T) {
	tp := newTopo(t)
	entry := withPrevResult(t, tp.egressEntry(false, ""))
	pod := testutil.NewNS(t)
	natBefore := tp.nat(t, false)
	id := "c" + strings.Repeat("0123456789abcdef", 16)
	tp.wantAddRefused(t, false, pod, id, "eth0", entry, types.ErrInvalidEnvironmentVariables, "CNI_CONTAINERID is 257 characters long")

	longest := "c" + strings.Repeat("0", 255-len(egress.Comment("aws-cni", ""))-1)
	if e := execIf(t, tp, "ADD", longest, pod.Path(), "eth0", entry); e != nil {
		t.Fatalf("ADD with a %d-character ID: %v", len(longest), e)
	}
	if nat := strings.Join(tp.nat(t, false), "\n"); !strings.Contains(nat, strconv.Quote(egress.Comment("aws-cni", longest))) {
		t.Errorf("the nat table lacks the whole comment %q:\n%s", egress.Comment("aws-cni", longest), nat)
	}
	if e := execIf(t, tp, "DEL", longest, pod.Path(), "eth0", entry); e != nil {
		t.Errorf("DEL with a %d-character ID: %v", len(longest), e)
	}
	wantLines(t, "nat after its DEL", tp.nat(t, false), natBefore)
}
