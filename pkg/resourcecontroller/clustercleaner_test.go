package resourcecontroller

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestClusterCleanerTwoPasses: the cluster cleaner deletes this cluster's
// controller and CNI ENIs (either cluster tag form) only once two passes
// in a row found them available. An ENI ipamd created but attached only
// after the first pass survives; another cluster's or another owner's
// available ENI is never touched.
func TestClusterCleanerTwoPasses(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	c, err := New(Config{ClusterName: "test", VPCID: simtest.VPCID, Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}, w.ec2)
	if err != nil {
		t.Fatal(err)
	}
	mk := func() string {
		t.Helper()
		e, err := w.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: inst2, SubnetID: simtest.NodeSubnetID})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	retag := func(id string, tags map[string]string) {
		t.Helper()
		if err := w.ec2.CreateTags(ctx, id, tags); err != nil {
			t.Fatal(err)
		}
	}
	pending := mk() // ipamd's: created, attached only after the first pass
	cniLeak := mk() // ipamd's, never attached (cluster.k8s.amazonaws.com/name form)
	otherCluster := mk()
	retag(otherCluster, map[string]string{awsutils.TagClusterName: "other"})
	otherOwner := mk()
	retag(otherOwner, map[string]string{awsutils.TagENIOwner: "someone-else"})
	// The controller's form: kubernetes.io/cluster/test=owned, no name tag.
	br, err := w.ec2.CreateBranchENI(ctx, awsutils.BranchRequest{InstanceID: inst1, TrunkID: "eni-000000000000000ff", VLAN: 3, SubnetID: simtest.NodeSubnetID, ClusterName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rcLeak := br.ID

	want := func(pass string, present, gone []string) {
		t.Helper()
		have := w.eniIDs()
		for _, id := range present {
			if !slices.Contains(have, id) {
				t.Errorf("after %s: %s was deleted", pass, id)
			}
		}
		for _, id := range gone {
			if slices.Contains(have, id) {
				t.Errorf("after %s: %s still exists", pass, id)
			}
		}
	}

	seen := c.cleanCluster(ctx, nil)
	want("pass 1", []string{pending, cniLeak, otherCluster, otherOwner, rcLeak}, nil)
	if got := metricValue(t, "vpc_cni_created_available_eni_count", nil); got != 2 {
		t.Errorf("vpc_cni_created_available_eni_count %v after pass 1, want 2", got)
	}
	if got := metricValue(t, "vpc_rc_created_available_eni_count", nil); got != 1 {
		t.Errorf("vpc_rc_created_available_eni_count %v after pass 1, want 1", got)
	}

	// ipamd attaches its new ENI between the passes.
	if _, err := w.ec2.AttachENI(ctx, pending, inst2, 1, 0); err != nil {
		t.Fatal(err)
	}
	seen = c.cleanCluster(ctx, seen)
	want("pass 2", []string{pending, otherCluster, otherOwner}, []string{cniLeak, rcLeak})
	if got := metricValue(t, "leaked_eni_count", nil); got != 2 {
		t.Errorf("leaked_eni_count %v after pass 2, want 2", got)
	}
	c.cleanCluster(ctx, seen)
	want("pass 3", []string{pending, otherCluster, otherOwner}, nil)
}
