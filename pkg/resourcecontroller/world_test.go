package resourcecontroller

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// Instances and groups of the test VPC.
const (
	inst1     = simtest.InstanceID    // m5.large: 3 ENIs, 9 branches
	inst2     = "i-00000000000000002" // m5.large
	inst3     = "i-00000000000000003" // m5.xlarge: 4 ENIs, 18 branches
	inst4     = "i-00000000000000004" // m5.2xlarge: 4 ENIs, 38 branches
	inst5     = "i-00000000000000005" // t3.medium: cannot trunk
	sgNode    = simtest.SecurityGroupID
	sgDB      = "sg-000000000000000db"
	sgCustom  = "sg-00000000000000c05"
	sgUnknown = "sg-00000000000dead00"
)

// world is the local VPC (in-process, spoken to with the real AWS SDK).
type world struct {
	env *simtest.Env
	ec2 *awsutils.EC2
}

// nodeSpec is an m5.large node instance in the node subnet, in sgNode.
func nodeSpec(id string) vpcsim.InstanceSpec {
	return vpcsim.InstanceSpec{ID: id, Type: "m5.large", Subnet: simtest.NodeSubnetID, SecurityGroups: []string{sgNode}}
}

// newWorld starts the test VPC with inst1-inst5 and the extra instances.
func newWorld(t testing.TB, extra ...vpcsim.InstanceSpec) *world {
	t.Helper()
	sc := simtest.Basic()
	sc.Instances = append(sc.Instances,
		nodeSpec(inst2),
		vpcsim.InstanceSpec{ID: inst3, Type: "m5.xlarge", Subnet: simtest.NodeSubnetID, SecurityGroups: []string{sgNode}},
		vpcsim.InstanceSpec{ID: inst4, Type: "m5.2xlarge", Subnet: simtest.NodeSubnetID, SecurityGroups: []string{sgNode}},
		vpcsim.InstanceSpec{ID: inst5, Type: "t3.medium", Subnet: simtest.NodeSubnetID, SecurityGroups: []string{sgNode}})
	sc.Instances = append(sc.Instances, extra...)
	sc.VPCs[0].SecurityGroups = append(sc.VPCs[0].SecurityGroups,
		vpcsim.SecurityGroupSpec{ID: sgDB, Name: "db-clients", Description: "may reach the database"},
		vpcsim.SecurityGroupSpec{ID: sgCustom, Name: "custom", Description: "ENIConfig group"})
	env := simtest.Start(t, sc)
	return &world{env: env, ec2: fastEC2(t, env.Sim.Region(), env.EC2URL, 3)}
}

// branches lists the controller's branch ENIs (associated or not).
func (w *world) branches() []vpcsim.ENIView {
	var out []vpcsim.ENIView
	for _, e := range w.env.Sim.NetworkInterfaces() {
		if e.Description == awsutils.BranchDescription {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b vpcsim.ENIView) int { return a.PrimaryIP.Compare(b.PrimaryIP) })
	return out
}

func (w *world) trunks() []vpcsim.ENIView {
	var out []vpcsim.ENIView
	for _, e := range w.env.Sim.NetworkInterfaces() {
		if e.InterfaceType == "trunk" {
			out = append(out, e)
		}
	}
	return out
}

// trunkOf is the id of the trunk attached to inst.
func (w *world) trunkOf(t testing.TB, inst string) string {
	t.Helper()
	for _, tr := range w.trunks() {
		if tr.Attachment != nil && tr.Attachment.InstanceID == inst {
			return tr.ID
		}
	}
	t.Fatalf("no trunk on %s: %v", inst, w.trunks())
	return ""
}

// leakBranch makes the state a crash between CreateNetworkInterface and
// the annotation leaves: a branch on VLAN 5 of inst's trunk, tagged with
// it, that no pod claims. It returns the branch's id.
func (w *world) leakBranch(t testing.TB, inst string) string {
	t.Helper()
	b, err := w.ec2.CreateBranchENI(context.Background(), awsutils.BranchRequest{InstanceID: inst, TrunkID: w.trunkOf(t, inst), VLAN: 5,
		SubnetID: simtest.NodeSubnetID, SecurityGroups: []string{sgDB}, ClusterName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return b.ID
}

// eniIDs lists every ENI in the VPC, whoever made it.
func (w *world) eniIDs() []string { return branchIDs(w.env.Sim.NetworkInterfaces()) }

func branchIDs(bs []vpcsim.ENIView) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

// fastEC2 is the controller's EC2 client for endpoint with millisecond
// back-offs and no rate limits, making attempts tries per call.
func fastEC2(t testing.TB, region, endpoint string, attempts int) *awsutils.EC2 {
	t.Helper()
	e, err := awsutils.NewEC2(context.Background(), awsutils.Config{
		Region: region, EC2Endpoint: endpoint, ClusterName: "test",
		Credentials: &awsutils.StaticCredentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		Retry: awsutils.RetryConfig{MaxAttempts: attempts, Backoff: awsutils.Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond},
			ThrottleBackoff: awsutils.Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond}},
		Limits:     awsutils.RateLimits{Disabled: true},
		DetachPoll: awsutils.Backoff{Base: 5 * time.Millisecond, Max: 50 * time.Millisecond},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// refuseBranchDeletes has EC2 refuse every disassociate and delete, so a
// branch stays on its trunk until the faults are cleared.
func (w *world) refuseBranchDeletes(t testing.TB) {
	t.Helper()
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{
		{Action: "DisassociateTrunkInterface", Code: "InternalError"},
		{Action: "DeleteNetworkInterface", Code: "InternalError"},
	}}); err != nil {
		t.Fatal(err)
	}
}
