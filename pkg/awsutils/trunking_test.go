package awsutils

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestTrunkingCompatible(t *testing.T) {
	for typ, want := range map[string]bool{
		"t3.medium":        false,
		"t2.micro":         false,
		"t4g.nano":         false,
		"m4.large":         false,
		"c4.xlarge":        false,
		"x1e.xlarge":       false,
		"i3.large":         false,
		"i4i.large":        false, // the one non-trunking i4i size
		"i4i.xlarge":       true,
		"m5.large":         true,
		"c5.metal":         true,
		"c6in.32xlarge":    true,
		"m9z.future":       true, // unknown: compatible, as upstream
		"":                 true,
		"T3.MEDIUM":        true, // EC2 names are lower case; no folding
		"u-6tb1.112xlarge": false,
	} {
		if got := TrunkingCompatible(typ); got != want {
			t.Errorf("TrunkingCompatible(%q) = %v, want %v", typ, got, want)
		}
	}
	if !slices.IsSorted(nonTrunkingTypes) {
		t.Error("nonTrunkingTypes is not sorted: binary search misses entries")
	}
	if n := len(nonTrunkingTypes); n != 104 {
		t.Errorf("nonTrunkingTypes has %d entries, want the 104 of the source table", n)
	}
}

func TestParseInstanceTypeFillsTrunking(t *testing.T) {
	for typ, want := range map[string]bool{"t3.medium": false, "m5.large": true} {
		got, err := parseInstanceType(types.InstanceTypeInfo{
			InstanceType: types.InstanceType(typ),
			NetworkInfo:  &types.NetworkInfo{MaximumNetworkInterfaces: aws.Int32(3), Ipv4AddressesPerInterface: aws.Int32(10)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.Trunking != want {
			t.Errorf("%s: Trunking = %v, want %v", typ, got.Trunking, want)
		}
	}
}

// The table matches the reference it was generated from, where that file
// is present (it is outside the repository).
func TestTrunkingTableMatchesReference(t *testing.T) {
	const ref = "/work/shared/reference/instance-limits.tsv"
	f, err := os.Open(ref)
	if err != nil {
		t.Skipf("reference table not available: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	rows := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 4 {
			t.Fatalf("%s: short row %q", ref, line)
		}
		rows++
		if want := cols[3] == "true"; TrunkingCompatible(cols[0]) != want {
			t.Errorf("%s: trunking %s, TrunkingCompatible says %v", cols[0], cols[3], !want)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rows < 1000 {
		t.Fatalf("%s: only %d rows", ref, rows)
	}
}
