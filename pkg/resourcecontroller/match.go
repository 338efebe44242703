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
		podOK, podErr := selects(sp.PodSelector, podLabels)
		saOK, saErr := selects(sp.ServiceAccountSelector, saLabels)
		if podErr != nil || saErr != nil {
			// The schema takes any operator: such a policy selects nothing,
			// and its pods run with the node's groups; say so.
			if podErr != nil {
				m.Invalid = append(m.Invalid, fmt.Sprintf("%s: podSelector: %v", p.Name, podErr))
			}
			if saErr != nil {
				m.Invalid = append(m.Invalid, fmt.Sprintf("%s: serviceAccountSelector: %v", p.Name, saErr))
			}
			continue
		}
		if !podOK || !saOK {
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
// not convert (a bad operator) does not match and says why.
func selects(sel *metav1.LabelSelector, l map[string]string) (bool, error) {
	if sel == nil {
		return true, nil
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return s.Matches(labels.Set(l)), nil
}

// CheckGroups rejects a group list EC2 would refuse on one ENI: more than
// max groups. The error names the policies so the user knows what to edit.
func CheckGroups(m Match, max int) error {
	if len(m.Groups) > max {
		return fmt.Errorf("policies %v give %d security groups %v; an ENI takes at most %d", m.Policies, len(m.Groups), m.Groups, max)
	}
	return nil
}
