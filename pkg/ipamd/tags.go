package ipamd

import (
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
