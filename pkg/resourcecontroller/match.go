package resourcecontroller

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/vpc-cni/vpc-cni/pkg/apis/vpcresources/v1beta1"
)

// Match is the outcome of matching one pod against its namespace's
// policies.
type Match struct {
	// Groups is the union of the matching policies' groups, first
	// occurrence kept, in policy order.
	Groups []string
	// Policies names the matching policies.
	Policies []string
	// Invalid names policies skipped as unusable, with why.
	Invalid []string
}

// MatchPolicies decides which groups a pod gets. A policy needs at least
// one selector and one group; a selector that is set must match (both
// when both are set); {} matches everything. Policies are taken in name
// order so the result does not depend on cache order.
func MatchPolicies(podLabels, saLabels map[string]string, policies []v1beta1.SecurityGroupPolicy) Match {
	ps := slices.Clone(policies)
	slices.SortFunc(ps, func(a, b v1beta1.SecurityGroupPolicy) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	var m Match
	for _, p := range ps {
		sp := p.Spec
		if sp.PodSelector == nil && sp.ServiceAccountSelector == nil {
			m.Invalid = append(m.Invalid, p.Name+": neither podSelector nor serviceAccountSelector is set")
			continue
		}
		if len(sp.SecurityGroups.Groups) == 0 {
			m.Invalid = append(m.Invalid, p.Name+": securityGroups.groupIds is empty")
			continue
		}
		if !selects(sp.PodSelector, podLabels) || !selects(sp.ServiceAccountSelector, saLabels) {
			continue
		}
		m.Policies = append(m.Policies, p.Name)
		for _, g := range sp.SecurityGroups.Groups {
			if !slices.Contains(m.Groups, g) {
				m.Groups = append(m.Groups, g)
			}
		}
	}
	return m
}

// selects: a nil selector is not evaluated (true); a selector that does
// not convert (a bad operator) does not match.
func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(l))
}

// CheckGroups rejects a group list EC2 would refuse on one ENI: more than
// max groups. The error names the policies so the user knows what to edit.
func CheckGroups(m Match, max int) error {
	if len(m.Groups) > max {
		return fmt.Errorf("policies %v give %d security groups %v; an ENI takes at most %d", m.Policies, len(m.Groups), m.Groups, max)
	}
	return nil
}
