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

// The table agrees with the two other copies of EC2's trunking facts in the
// repository: every type the resource controller knows a branch limit for
// can trunk, and vpcsim's catalog says trunking exactly where the table does.
func TestTrunkingTableMatchesRepositoryCatalogs(t *testing.T) {
	limits := readTSV(t, "../resourcecontroller/branch_limits.tsv", 2)
	if len(limits) < 1000 {
		t.Fatalf("branch_limits.tsv: only %d rows", len(limits))
	}
	for _, cols := range limits {
		if !TrunkingCompatible(cols[0]) {
			t.Errorf("%s has a branch limit (%s) but TrunkingCompatible says false", cols[0], cols[1])
		}
	}
	catalog := readTSV(t, "../vpcsim/catalog.tsv", 12)
	for _, cols := range catalog {
		if want := cols[11] == "true"; TrunkingCompatible(cols[0]) != want {
			t.Errorf("vpcsim catalog: %s trunking %s, TrunkingCompatible says %v", cols[0], cols[11], !want)
		}
	}
}

// readTSV returns the rows of a tab-separated file in the repository that
// have at least minCols columns, skipping comments and blank lines.
func readTSV(t *testing.T, path string, minCols int) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < minCols {
			t.Fatalf("%s: short row %q", path, line)
		}
		rows = append(rows, cols)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}
