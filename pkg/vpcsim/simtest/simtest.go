// Package simtest starts vpcsim in-process for tests: an EC2 endpoint and one
// IMDS endpoint per instance on httptest servers that close with the test.
package simtest

import (
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// Env is a running simulator.
type Env struct {
	Sim    *vpcsim.Sim
	EC2URL string
	// AdminURL serves Sim.AdminHandler.
	AdminURL string

	t    testing.TB
	mu   sync.Mutex
	imds map[string]string
}

// Start builds a Sim from the scenario and serves it until the test ends.
func Start(t testing.TB, s vpcsim.Scenario, opts ...vpcsim.Option) *Env {
	t.Helper()
	sim, err := vpcsim.New(s, opts...)
	if err != nil {
		t.Fatalf("simtest: %v", err)
	}
	t.Cleanup(sim.Close)
	ec2 := httptest.NewServer(sim.EC2Handler())
	t.Cleanup(ec2.Close)
	admin := httptest.NewServer(sim.AdminHandler())
	t.Cleanup(admin.Close)
	return &Env{Sim: sim, EC2URL: ec2.URL, AdminURL: admin.URL, t: t, imds: map[string]string{}}
}

// IMDSURL returns the base URL of an instance's metadata service (started on
// first use). Use it as the SDK IMDS client's Endpoint.
func (e *Env) IMDSURL(instanceID string) string {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if u, ok := e.imds[instanceID]; ok {
		return u
	}
	h, err := e.Sim.IMDSHandler(instanceID)
	if err != nil {
		e.t.Fatalf("simtest: %v", err)
	}
	srv := httptest.NewServer(h)
	e.t.Cleanup(srv.Close)
	e.imds[instanceID] = srv.URL
	return srv.URL
}

// Instance IDs and names used by Basic.
const (
	InstanceID       = "i-00000000000000001"
	VPCID            = "vpc-00000000000000001"
	NodeSubnetID     = "subnet-00000000000000001" // 10.0.0.0/20, us-west-2a, node subnet
	NodeSubnetBID    = "subnet-00000000000000002" // 10.0.16.0/20, us-west-2b
	CNISubnetID      = "subnet-00000000000000003" // 10.0.32.0/20, us-west-2a, kubernetes.io/role/cni=1
	CustomSubnetAID  = "subnet-00000000000000004" // 100.64.0.0/19, us-west-2a
	CustomSubnetBID  = "subnet-00000000000000005" // 100.64.32.0/19, us-west-2b
	SecurityGroupID  = "sg-00000000000000001"
	SecurityGroup2ID = "sg-00000000000000002"
)

// Basic is a ready scenario: us-west-2, one VPC 10.0.0.0/16 + 100.64.0.0/16
// + an IPv6 /56, node subnets in us-west-2a and 2b, a CNI-tagged subnet,
// two 100.64 subnets for custom networking, two security groups and one
// m5.large instance i-00000000000000001 in the node subnet. Throttling is off
// and there are no delays, so unit tests are fast.
func Basic() vpcsim.Scenario {
	return vpcsim.Scenario{
		Region:            "us-west-2",
		AccountID:         "123456789012",
		AvailabilityZones: []string{"us-west-2a", "us-west-2b", "us-west-2c"},
		VPCs: []vpcsim.VPCSpec{{
			ID:             VPCID,
			CIDR:           "10.0.0.0/16",
			SecondaryCIDRs: []string{"100.64.0.0/16"},
			IPv6CIDR:       "2600:1f14:abc:de00::/56",
			Subnets: []vpcsim.SubnetSpec{
				{ID: NodeSubnetID, AZ: "us-west-2a", CIDR: "10.0.0.0/20", IPv6CIDR: "2600:1f14:abc:de00::/64", Tags: map[string]string{"Name": "node-a"}},
				{ID: NodeSubnetBID, AZ: "us-west-2b", CIDR: "10.0.16.0/20", IPv6CIDR: "2600:1f14:abc:de01::/64", Tags: map[string]string{"Name": "node-b"}},
				{ID: CNISubnetID, AZ: "us-west-2a", CIDR: "10.0.32.0/20", IPv6CIDR: "2600:1f14:abc:de02::/64", Tags: map[string]string{"Name": "cni-a", "kubernetes.io/role/cni": "1"}},
				{ID: CustomSubnetAID, AZ: "us-west-2a", CIDR: "100.64.0.0/19", Tags: map[string]string{"Name": "pods-a"}},
				{ID: CustomSubnetBID, AZ: "us-west-2b", CIDR: "100.64.32.0/19", Tags: map[string]string{"Name": "pods-b"}},
			},
			SecurityGroups: []vpcsim.SecurityGroupSpec{
				{ID: SecurityGroupID, Name: "default", Description: "default VPC security group"},
				{ID: SecurityGroup2ID, Name: "pods", Description: "pod security group"},
			},
		}},
		Instances: []vpcsim.InstanceSpec{{
			ID: InstanceID, Type: "m5.large", Subnet: NodeSubnetID, SecurityGroups: []string{SecurityGroupID},
			Tags: map[string]string{"Name": "node-1"},
		}},
	}
}
