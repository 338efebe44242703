package resourcecontroller

import (
	"slices"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// Only an unattached, available trunk is stray: one being attached or
// attached (to this instance or, after a move, another) is left alone.
func TestStrayTrunks(t *testing.T) {
	got := strayTrunks([]awsutils.ENI{
		{ID: "eni-lost", Status: "available"},
		{ID: "eni-attached", Status: "in-use", Attachment: &awsutils.Attachment{}},
		{ID: "eni-attaching", Status: "attaching", Attachment: &awsutils.Attachment{}},
	})
	if !slices.Equal(got, []string{"eni-lost"}) {
		t.Errorf("stray trunks: %v", got)
	}
}
