package resourcecontroller

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/apis/vpcresources/v1beta1"
)

func policy(name string, pod, sa *metav1.LabelSelector, groups ...string) v1beta1.SecurityGroupPolicy {
	return v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: pod, ServiceAccountSelector: sa, SecurityGroups: v1beta1.GroupIDs{Groups: groups}}}
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func TestMatchPolicies(t *testing.T) {
	ps := []v1beta1.SecurityGroupPolicy{
		policy("b-db", sel("role", "db-client"), nil, "sg-db", "sg-common"),
		policy("a-sa", nil, sel("team", "x"), "sg-team"),
		policy("c-both", sel("role", "db-client"), sel("team", "y"), "sg-both"),
		policy("d-empty", &metav1.LabelSelector{}, nil, "sg-common", "sg-all"),
		policy("e-none", nil, nil, "sg-never"),
		policy("f-nogroups", sel(), nil),
		policy("g-badop", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Nope"}}}, nil, "sg-bad"),
	}
	cases := []struct {
		name      string
		pod, sa   map[string]string
		want      []string
		wantNames []string
	}{
		{"pod selector", map[string]string{"role": "db-client"}, nil, []string{"sg-db", "sg-common", "sg-all"}, []string{"b-db", "d-empty"}},
		{"sa selector", nil, map[string]string{"team": "x"}, []string{"sg-team", "sg-common", "sg-all"}, []string{"a-sa", "d-empty"}},
		{"both must match", map[string]string{"role": "db-client"}, map[string]string{"team": "y"}, []string{"sg-db", "sg-common", "sg-both", "sg-all"}, []string{"b-db", "c-both", "d-empty"}},
		{"only empty selector", map[string]string{"role": "web"}, nil, []string{"sg-common", "sg-all"}, []string{"d-empty"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := MatchPolicies(tc.pod, tc.sa, ps)
			if !slices.Equal(m.Groups, tc.want) || !slices.Equal(m.Policies, tc.wantNames) {
				t.Fatalf("groups %v policies %v, want %v %v", m.Groups, m.Policies, tc.want, tc.wantNames)
			}
			if len(m.Invalid) != 3 || !strings.Contains(m.Invalid[2], "g-badop: podSelector") {
				t.Fatalf("invalid policies %v, want e-none, f-nogroups and g-badop's podSelector", m.Invalid)
			}
		})
	}
}

func TestCheckGroupsNamesPolicies(t *testing.T) {
	m := MatchPolicies(map[string]string{"a": "1"}, nil, []v1beta1.SecurityGroupPolicy{
		policy("six", sel("a", "1"), nil, "sg-1", "sg-2", "sg-3", "sg-4", "sg-5", "sg-6"),
	})
	err := CheckGroups(m, 5)
	if err == nil || !strings.Contains(err.Error(), "six") || !strings.Contains(err.Error(), "at most 5") {
		t.Fatalf("CheckGroups = %v, want an error naming policy six and the limit", err)
	}
	if err := CheckGroups(m, 16); err != nil {
		t.Fatalf("16 allowed: %v", err)
	}
}

func TestVLANsLowestFirstAndRange(t *testing.T) {
	var s vlanSet
	for want := 1; want <= MaxVLAN; want++ {
		got, err := s.take()
		if err != nil || got != want {
			t.Fatalf("take = %d, %v; want %d", got, err, want)
		}
	}
	if _, err := s.take(); err == nil {
		t.Fatal("take past 120 succeeded")
	}
	s.free(7)
	if got, _ := s.take(); got != 7 {
		t.Fatalf("take after free(7) = %d", got)
	}
	for _, bad := range []int{0, -1, 121, 4094} {
		if err := s.mark(bad); err == nil {
			t.Fatalf("mark(%d) accepted", bad)
		}
	}
}

func TestAnnotationRoundTripAndKeys(t *testing.T) {
	in := []BranchENI{{ENIID: "eni-1", MAC: "02:00:00:00:00:01", PrivateIP: "10.0.0.9", VlanID: 3, SubnetCIDR: "10.0.0.0/20", AssociationID: "trunk-assoc-1"}}
	raw, err := EncodeAnnotation(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"eniId":"eni-1","ifAddress":"02:00:00:00:00:01","privateIp":"10.0.0.9","ipv6Addr":"","vlanId":3,"subnetCidr":"10.0.0.0/20","subnetV6Cidr":"","associationID":"trunk-assoc-1"}]`
	if raw != want {
		t.Fatalf("annotation\n got %s\nwant %s", raw, want)
	}
	out, err := DecodeAnnotation(raw)
	if err != nil || !slices.Equal(out, in) {
		t.Fatalf("decode = %v, %v", out, err)
	}
}

func TestDecodeAnnotationRejectsBadInput(t *testing.T) {
	for name, raw := range map[string]string{
		"not json":   `{eni`,
		"object":     `{"eniId":"eni-1"}`,
		"empty":      `[]`,
		"vlan 0":     `[{"eniId":"eni-1","ifAddress":"02:00:00:00:00:01","privateIp":"10.0.0.9","vlanId":0}]`,
		"vlan 121":   `[{"eniId":"eni-1","ifAddress":"02:00:00:00:00:01","privateIp":"10.0.0.9","vlanId":121}]`,
		"bad mac":    `[{"eniId":"eni-1","ifAddress":"zz","privateIp":"10.0.0.9","vlanId":1}]`,
		"no address": `[{"eniId":"eni-1","ifAddress":"02:00:00:00:00:01","vlanId":1}]`,
		"no eni id":  `[{"ifAddress":"02:00:00:00:00:01","privateIp":"10.0.0.9","vlanId":1}]`,
	} {
		if _, err := DecodeAnnotation(raw); err == nil || !strings.Contains(err.Error(), PodENIAnnotation) {
			t.Errorf("%s: DecodeAnnotation(%s) = %v, want an error naming the annotation", name, raw, err)
		}
	}
}

func TestRegistryCapacityCountsCoolingAndInflight(t *testing.T) {
	r := newRegistry()
	tr := newTrunk()
	tr.node, tr.limit = "n1", 3
	r.put(tr)
	at := trunkAt{node: "n1", gen: tr.gen}
	v, err := r.reserve(at, 2)
	if err != nil || !slices.Equal(v, []int{1, 2}) {
		t.Fatalf("reserve 2 = %v, %v", v, err)
	}
	if _, err := r.reserve(at, 2); !errors.Is(err, ErrAtCapacity) {
		t.Fatalf("reserve past the limit = %v, want ErrAtCapacity", err)
	}
	r.record(at, "uid-a", "ns/a", []BranchENI{{ENIID: "eni-a", VlanID: 1}, {ENIID: "eni-b", VlanID: 2}})
	now := time.Now()
	if n := r.release("n1", "uid-a", now); n != 2 {
		t.Fatalf("released %d", n)
	}
	// Cooling branches still count.
	if _, err := r.reserve(at, 2); !errors.Is(err, ErrAtCapacity) {
		t.Fatalf("reserve while cooling = %v, want ErrAtCapacity", err)
	}
	if due := r.due("n1", now, time.Minute); len(due) != 0 {
		t.Fatalf("due before the cool-down: %v", due)
	}
	due := r.due("n1", now.Add(time.Minute), time.Minute)
	if len(due) != 2 {
		t.Fatalf("due after the cool-down: %v", due)
	}
	for _, b := range due {
		r.deleted("n1", b, nil)
	}
	v, err = r.reserve(at, 3)
	if err != nil || !slices.Equal(v, []int{1, 2, 3}) {
		t.Fatalf("reserve after deletion = %v, %v (VLANs must be free again)", v, err)
	}
}

func TestRegistryFailedDeleteRetriesThenGivesUp(t *testing.T) {
	r := newRegistry()
	tr := newTrunk()
	tr.node, tr.limit = "n1", 5
	r.put(tr)
	at := trunkAt{node: "n1", gen: tr.gen}
	r.reserve(at, 1)
	r.record(at, "u", "ns/p", []BranchENI{{ENIID: "eni-a", VlanID: 1}})
	r.release("n1", "u", time.Time{})
	for i := range maxDeleteRetries {
		due := r.due("n1", time.Now(), time.Minute)
		if len(due) != 1 {
			t.Fatalf("attempt %d: due %v", i, due)
		}
		r.deleted("n1", due[0], errors.New("boom"))
	}
	if due := r.due("n1", time.Now(), time.Minute); len(due) != 0 {
		t.Fatalf("still retried after %d failures", maxDeleteRetries)
	}
	if r.known("n1", "eni-a", 1) {
		t.Fatal("a given-up branch must be left to GC (not known)")
	}
	// It still exists and holds VLAN 1: it counts against the limit and
	// its VLAN is taken, until the GC has deleted it.
	if v, err := r.reserve(at, 5); !errors.Is(err, ErrAtCapacity) {
		t.Fatalf("reserve of the whole limit beside a given-up branch = %v, %v; want ErrAtCapacity", v, err)
	}
	if v, err := r.reserve(at, 1); err != nil || !slices.Equal(v, []int{2}) {
		t.Fatalf("reserve beside a given-up branch = %v, %v; want VLAN 2", v, err)
	}
	r.unreserve(at, []int{2})
	r.reclaim(at, "eni-a")
	if v, err := r.reserve(at, 5); err != nil || !slices.Equal(v, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("reserve after the GC deleted it = %v, %v; want VLANs 1-5", v, err)
	}
}

func TestInstanceIDFromProviderID(t *testing.T) {
	for in, want := range map[string]string{
		"aws:///us-west-2a/i-0000000000000001":  "i-0000000000000001",
		"aws:///us-west-2a/i-0123456789abcdef0": "i-0123456789abcdef0",
		"aws:///us-west-2a/i-01234567":          "i-01234567",
		"kind://docker/node1":                   "",
		"":                                      "",
	} {
		if got := InstanceIDFromProviderID(in); got != want {
			t.Errorf("InstanceIDFromProviderID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBranchLimits(t *testing.T) {
	for typ, want := range map[string]int{"m5.large": 9, "m5.xlarge": 18, "m5.2xlarge": 38, "c5.large": 9} {
		if got, ok := BranchLimit(typ); !ok || got != want {
			t.Errorf("BranchLimit(%s) = %d, %v; want %d", typ, got, ok, want)
		}
	}
	for _, typ := range []string{"t3.medium", "t2.micro", "nope.large"} {
		if _, ok := BranchLimit(typ); ok {
			t.Errorf("BranchLimit(%s) ok, want not supported", typ)
		}
	}
}

func TestParseCooldown(t *testing.T) {
	for raw, want := range map[string]time.Duration{"60": time.Minute, " 90 ": 90 * time.Second, "10": MinCooldown, "0": MinCooldown, "-5": MinCooldown,
		// Past what a Duration holds: as long as one can be, not the floor.
		"9999999999": time.Duration(math.MaxInt64), "99999999999999999999": time.Duration(math.MaxInt64)} {
		if got, err := ParseCooldown(raw, MinCooldown); err != nil || got != want {
			t.Errorf("ParseCooldown(%q) = %s, %v; want %s", raw, got, err, want)
		}
	}
	for _, raw := range []string{"", "1m", "60s", "abc", "1.5"} {
		_, err := ParseCooldown(raw, MinCooldown)
		if err == nil || !strings.Contains(err.Error(), CooldownKey) || !strings.Contains(err.Error(), ConfigMapName) {
			t.Errorf("ParseCooldown(%q) = %v, want an error naming %s/%s", raw, err, ConfigMapName, CooldownKey)
		}
	}
}
