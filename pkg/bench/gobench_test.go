package bench

import (
	"strings"
	"testing"
)

const goBenchOut = `goos: linux
goarch: amd64
pkg: github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore
cpu: Some CPU
BenchmarkAssignUnassign/secondary-ipv4/addrs=16/cooldown=false-2         	    2000	       795.8 ns/op	      64 B/op	       1 allocs/op
BenchmarkAssignUnassign/secondary-ipv4/addrs=4096/cooldown=true
    bench_test.go:80: a log line
BenchmarkAssignUnassign/secondary-ipv4/addrs=4096/cooldown=true-2        	    2000	       809.7 ns/op	      66 B/op	       1 allocs/op
BenchmarkNoProcs 	 10	 5 ns/op
PASS
ok  	github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore	0.438s
`

func TestParseGoBench(t *testing.T) {
	got, err := ParseGoBench(strings.NewReader(goBenchOut))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d results, want 3: %+v", len(got), got)
	}
	if g := got[0]; g.Name != "BenchmarkAssignUnassign/secondary-ipv4/addrs=16/cooldown=false" || g.Procs != 2 || g.Iterations != 2000 ||
		g.Metrics["ns/op"] != 795.8 || g.Metrics["B/op"] != 64 || g.Metrics["allocs/op"] != 1 {
		t.Errorf("first result = %+v", g)
	}
	if g := got[1]; g.Name != "BenchmarkAssignUnassign/secondary-ipv4/addrs=4096/cooldown=true" || g.Metrics["ns/op"] != 809.7 {
		t.Errorf("second result = %+v", g)
	}
	if g := got[2]; g.Name != "BenchmarkNoProcs" || g.Procs != 1 || g.Metrics["ns/op"] != 5 {
		t.Errorf("third result = %+v", g)
	}
}

func TestParseGoBenchRejectsBrokenLines(t *testing.T) {
	for _, in := range []string{
		"BenchmarkX-2 many 5 ns/op\n",
		"BenchmarkX-2 10 5\n",
		"BenchmarkX-2 10 fast ns/op\n",
		"BenchmarkX-2 0 5 ns/op\n",
	} {
		if _, err := ParseGoBench(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "BenchmarkX") {
			t.Errorf("ParseGoBench(%q): err = %v, want an error naming the line", in, err)
		}
	}
}
