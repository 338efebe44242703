package main

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
)

// TestAddRequestCarriesPodUID: the ADD sends the runtime's K8S_POD_UID
// (as gRPC metadata, pkg/ipamclient), so ipamd can tell the pod from an
// earlier pod of the same name in a lagging cache (security groups for
// pods).
func TestAddRequestCarriesPodUID(t *testing.T) {
	k, err := parseK8sArgs("K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=6f1c2a9e-0b4d")
	if err != nil {
		t.Fatal(err)
	}
	inv := &invocation{conf: &config{}, k8s: k}
	if got := inv.addRequest(&entry.Args{ContainerID: "c1", IfName: "eth0"}).PodUID; got != "6f1c2a9e-0b4d" {
		t.Errorf("ADD request's pod UID = %q, want the runtime's", got)
	}
}
