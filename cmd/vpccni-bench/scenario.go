package main

import (
	"fmt"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// The bench's nodes: one per measurement, so each starts fresh and only
// one ipamd runs (and calls EC2) at a time.
const (
	nodeFresh = "fresh" // figure 3: m5.large, default targets, no delays
	nodeWarm  = "warm"  // figures 1, 7, 8: m5.4xlarge with a big WARM_IP_TARGET
	nodeChurn = "churn" // figures 2, 5, 6 and the plot: m5.4xlarge, default targets
	nodeBurst = "burst" // figure 4: m5.xlarge, default targets, realistic EC2 timing
	// figure 12: m5.4xlarge, prefix delegation, realistic EC2 timing
	nodeBurstPD = "burst-pd"
	// figure 21: m5.24xlarge, the whole pool warm
	nodeCkpt = "ckpt"
	// figure 13: m5.4xlarge, prefix delegation, no delays
	nodeChurnPD = "churn-pd"
)

// nodeRoles are the bench's nodes in the order they get instance IDs.
var nodeRoles = []string{nodeFresh, nodeWarm, nodeChurn, nodeBurst, nodeBurstPD, nodeCkpt, nodeChurnPD}

var nodeTypes = map[string]string{
	nodeFresh:   "m5.large",
	nodeWarm:    "m5.4xlarge",
	nodeChurn:   "m5.4xlarge",
	nodeBurst:   "m5.xlarge",
	nodeBurstPD: "m5.4xlarge",
	nodeCkpt:    "m5.24xlarge",
	nodeChurnPD: "m5.4xlarge",
}

// scenario is one VPC with a /18 node subnet (room for every node's pool)
// and the bench nodes, twice with a compare agent (identical nodes named
// "<role>-compare"). No faults: the burst phases set them themselves.
func scenario(compare bool) vpcsim.Scenario {
	sc := vpcsim.Scenario{
		Region:            "us-west-2",
		AccountID:         "123456789012",
		AvailabilityZones: []string{"us-west-2a"},
		VPCs: []vpcsim.VPCSpec{{
			ID:   "vpc-00000000000000b01",
			CIDR: "10.0.0.0/16",
			Subnets: []vpcsim.SubnetSpec{
				{ID: "subnet-00000000000000b01", AZ: "us-west-2a", CIDR: "10.0.0.0/18", Tags: map[string]string{"Name": "bench-nodes"}},
			},
			SecurityGroups: []vpcsim.SecurityGroupSpec{{ID: "sg-00000000000000b01", Name: "default", Description: "default VPC security group"}},
		}},
	}
	sides := []side{ours}
	if compare {
		sides = append(sides, side{name: "compare", bins: &localvpc.AgentBinaries{}})
	}
	for _, s := range sides {
		for _, role := range nodeRoles {
			sc.Instances = append(sc.Instances, vpcsim.InstanceSpec{
				ID:             fmt.Sprintf("i-%017x", 0xb01+len(sc.Instances)),
				Type:           nodeTypes[role],
				Subnet:         "subnet-00000000000000b01",
				SecurityGroups: []string{"sg-00000000000000b01"},
				Tags:           map[string]string{"Name": s.nodeName(role)},
			})
		}
	}
	return sc
}

// realisticFaults is EC2 and IMDS timing as users report it
// (bench/README.md, figure 4): describes 50 ms, mutating
// calls 200 ms, other calls 100 ms, an attachment that stays "attaching"
// for 1 s, IMDS showing new ENIs and addresses 2 s late, and EC2's
// per-account token buckets at their documented sizes.
func realisticFaults() vpcsim.Faults {
	d := func(ms int) vpcsim.Duration { return vpcsim.Duration(time.Duration(ms) * time.Millisecond) }
	return vpcsim.Faults{
		Latency: map[string]vpcsim.Duration{
			"*":                               d(100),
			"DescribeNetworkInterfaces":       d(50),
			"DescribeInstances":               d(50),
			"DescribeInstanceTypes":           d(50),
			"DescribeSubnets":                 d(50),
			"DescribeSecurityGroups":          d(50),
			"CreateNetworkInterface":          d(200),
			"AttachNetworkInterface":          d(200),
			"AssignPrivateIpAddresses":        d(200),
			"UnassignPrivateIpAddresses":      d(200),
			"DetachNetworkInterface":          d(200),
			"DeleteNetworkInterface":          d(200),
			"ModifyNetworkInterfaceAttribute": d(200),
			"CreateTags":                      d(100),
		},
		AttachDelay: d(1000),
		DetachDelay: d(1000),
		IMDSLag:     d(2000),
		Throttle:    vpcsim.Throttle{Enabled: true},
	}
}

const realisticFaultsText = "vpcsim timing: Describe* 50 ms, Create/Attach/Assign/Unassign/Detach/Delete/Modify 200 ms, " +
	"other calls 100 ms; attachments stay 'attaching' 1 s; IMDS lags EC2 by 2 s; EC2's documented per-account token buckets on"
