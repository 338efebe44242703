package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The plugin runs once per pod event, so its start-up cost follows its
// import graph: no AWS SDK, Kubernetes client or Prometheus may creep in
// (e.g. through a shared constants package), nor grpc-go or protobuf, whose
// package inits were most of its start-up: pkg/ipamclient speaks the wire.
// Nor the CNI library's skel, whose validation compiles regular expressions
// at start-up: pkg/cniplugin/entry reads the runtime's input. Nor the Go
// crypto module (its inits and pages): the host veth's MAC comes from
// getrandom(2) and its name's SHA-1 from pkg/vethname's own. (gzip stays:
// the rotated log copies are gzipped as upstream's are.)
func TestImportGraphStaysSmall(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/aws/",
		"k8s.io/",
		"sigs.k8s.io/",
		"github.com/prometheus/",
		"google.golang.org/grpc",
		"google.golang.org/protobuf",
		"golang.org/x/net/trace",
		"html/template",
		"github.com/containernetworking/cni/pkg/skel",
		"regexp",
		"crypto/",
		"math/big",
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed %d packages; expected the plugin's graph", len(deps))
	}
	var bad []string
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				bad = append(bad, d)
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("aws-cni imports %d forbidden packages: %s", len(bad), strings.Join(bad, ", "))
	}
	if !contains(deps, "github.com/vpc-cni/vpc-cni/pkg/hostcontract") {
		t.Errorf("aws-cni no longer imports pkg/hostcontract; the host contract must come from one place")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
