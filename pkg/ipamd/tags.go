package ipamd

import (
	"context"
	"maps"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// missingTags returns the tags a managed, non-trunk ENI should carry (the
// ones a new ENI is created with, createdAt aside) that it lacks or holds
// with another value; nil when none.
func missingTags(have map[string]string, instanceID, clusterName string, additional map[string]string) map[string]string {
	want := awsutils.ENITags(instanceID, clusterName, additional, time.Time{})
	delete(want, awsutils.TagCreatedAt)
	out := map[string]string{}
	for k, v := range want {
		if cur, ok := have[k]; !ok || cur != v {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// tagENI gives a managed ENI adopted at start (the primary included, as
// upstream does) the tags it lacks, in one call, and none when it has
// them all (docs/compatibility.md, "ipamd: EC2 usage and tags"). A
// failure is logged: the ENI works untagged.
func (n *IPAM) tagENI(ctx context.Context, e awsutils.ENI) {
	if n.cfg.IMDSOnlyMode || e.InterfaceType == "trunk" {
		return
	}
	tags := missingTags(e.Tags, n.node.id.InstanceID, n.cfg.ClusterName, n.cfg.AdditionalENITags)
	if tags == nil {
		return
	}
	if err := n.ec2.CreateTags(ctx, e.ID, tags); err != nil {
		n.log.Warn("could not tag an ENI", "eni", e.ID, "err", err, "ec2Code", awsutils.Code(err))
		return
	}
	if e.Tags == nil {
		e.Tags = map[string]string{}
	}
	maps.Copy(e.Tags, tags)
	n.log.Info("tagged ENI", "eni", e.ID, "tags", tags)
}
