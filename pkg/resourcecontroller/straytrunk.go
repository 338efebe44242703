package resourcecontroller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// strayTrunks picks, of the trunk ENIs tagged with an instance, those not
// attached: a trunk create EC2 applied but whose every answer was lost
// (the SDK's retries share one client token, so one ENI per failed init).
// Nothing else sweeps them: the cleanup lists branches, and ipamd's leaked
// ENI sweep matches only its own descriptions.
func strayTrunks(enis []awsutils.ENI) []string {
	var ids []string
	for _, e := range enis {
		if e.Attachment == nil && e.Status == "available" {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

// deleteStrayTrunks deletes the instance's stray trunk ENIs before a new
// trunk is made for it, so failed inits leave none behind.
func (c *Controller) deleteStrayTrunks(ctx context.Context, node *corev1.Node, instanceID string) error {
	enis, err := c.ec2.TaggedInstanceENIs(ctx, instanceID, awsutils.TrunkDescription)
	if err != nil {
		return fmt.Errorf("trunk for node %s: %w", node.Name, err)
	}
	for _, id := range strayTrunks(enis) {
		if err := c.ec2.DeleteENI(ctx, id); err != nil {
			return fmt.Errorf("trunk for node %s: deleting the stray trunk ENI %s: %w", node.Name, id, err)
		}
		c.cfg.Log.Info("deleted a stray trunk ENI before making the node's trunk", "node", node.Name, "eni", id)
	}
	return nil
}
