package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// IPv6 cluster with ENABLE_V4_EGRESS=false: upstream's conflist still
// carries the node's IPv4 address in the egress entry's nodeIP, with
// enabled "false" (docs/compatibility.md, "Conflist template"); ours left
// nodeIP empty. When IMDS cannot tell it, the disabled entry keeps an
// empty nodeIP and the node still becomes ready.
func TestIPv6ConflistNodeIPWithEgressOff(t *testing.T) {
	h := newHarness(t)
	for k, v := range map[string]string{"ENABLE_IPv6": "true", "ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1", "ENABLE_V4_EGRESS": "false"} {
		h.env[k] = v
	}
	b, err := h.prepared(func() (nodeIdentity, error) {
		return fakeIdentity{id: awsutils.Identity{LocalIPv4: mustAddr("10.0.0.10")}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"nodeIP": "10.0.0.10"`, `"enabled": "false"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("conflist lacks %s:\n%s", want, b)
		}
	}
	b, err = h.prepared(func() (nodeIdentity, error) { return fakeIdentity{err: errors.New("imds down")}, nil })
	if err != nil {
		t.Fatalf("egress off, IMDS down: %v, want the conflist", err)
	}
	for _, want := range []string{`"nodeIP": ""`, `"enabled": "false"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("conflist lacks %s:\n%s", want, b)
		}
	}
}
