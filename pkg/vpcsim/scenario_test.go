package vpcsim_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func TestShippedScenariosLoad(t *testing.T) {
	files, err := filepath.Glob("../../misc/scenarios/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("scenarios: %v %v", files, err)
	}
	for _, f := range files {
		sc, err := vpcsim.LoadScenario(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		sim, err := vpcsim.New(sc)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		sim.Close()
	}
	// basic.yaml is simtest.Basic in YAML
	sc, _ := vpcsim.LoadScenario("../../misc/scenarios/basic.yaml")
	a, _ := vpcsim.New(sc)
	b, _ := vpcsim.New(simtest.Basic())
	if sa, sb := a.State(), b.State(); len(sa.Subnets) != len(sb.Subnets) || sa.Instances[0].PrimaryIP != sb.Instances[0].PrimaryIP {
		t.Fatalf("basic.yaml and simtest.Basic differ")
	}
}

func TestBadScenariosNameTheirInput(t *testing.T) {
	cases := map[string]string{
		"region: us-west-2\nvpcz: []": "vpcz",
		"vpcs: []":                    "region",
		"region: r\nvpcs: [{cidr: 10.0.0.0/33, subnets: []}]":                                                                                                        "10.0.0.0/33",
		"region: r\nvpcs: [{cidr: 10.0.0.0/16, subnets: [{az: a, cidr: 10.1.0.0/24}]}]":                                                                              "10.1.0.0/24",
		"region: r\nvpcs: [{cidr: 10.0.0.0/16, subnets: [{az: a, cidr: 10.0.0.0/24}, {az: a, cidr: 10.0.0.128/25}]}]":                                                "overlaps",
		"region: r\nvpcs: [{cidr: 10.0.0.0/16, subnets: [{id: subnet-0000000a, az: a, cidr: 10.0.0.0/24}]}]\ninstances: [{type: m9.x, subnet: subnet-0000000a}]":     "m9.x",
		"region: r\nvpcs: [{cidr: 10.0.0.0/16, subnets: [{id: subnet-0000000a, az: a, cidr: 10.0.0.0/24}]}]\ninstances: [{type: m5.large, subnet: subnet-0000000b}]": "subnet-0000000b",
		// ids EC2 would never issue (one more or less digit, upper case)
		"region: r\nvpcs: [{id: vpc-1, cidr: 10.0.0.0/16, subnets: []}]":                                                                                                             "vpc-1",
		"region: r\nvpcs: [{cidr: 10.0.0.0/16, subnets: [{id: subnet-a, az: a, cidr: 10.0.0.0/24}]}]":                                                                                "subnet-a",
		"region: r\nvpcs: [{cidr: 10.0.0.0/16, subnets: [], securityGroups: [{id: sg-0000000000000001, name: d}]}]":                                                                  "sg-0000000000000001",
		"region: r\nvpcs: [{cidr: 10.0.0.0/16, subnets: [{id: subnet-0000000a, az: a, cidr: 10.0.0.0/24}]}]\ninstances: [{id: i-ABCDEF01, type: m5.large, subnet: subnet-0000000a}]": "i-ABCDEF01",
		"region: r\nvpcs: [{cidr: 10.0.0.0/16, subnets: [{id: subnet-0000000a, az: a, cidr: 10.0.0.0/24}]}]\nnetworkInterfaces: [{id: eni-trunk, subnet: subnet-0000000a}]":          "eni-trunk",
		"region: r\nvpcs: []\nfaults: {attachDelay: soon}":                                                                                                                           "soon",
		"region: r\nvpcs: []\nfaults: {errors: [{action: X, code: Y, rate: 3}]}":                                                                                                     "rate",
	}
	for in, want := range cases {
		sc, err := vpcsim.ParseScenario([]byte(in))
		if err == nil {
			_, err = vpcsim.New(sc)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("scenario %q: error %v, want one naming %q", in, err, want)
		}
	}
}

func TestScenarioENIsAndPublicIP(t *testing.T) {
	sc := simtest.Basic()
	sc.VPCs[0].Subnets[0].MapPublicIP = true
	sc.Instances[0].PrivateIP = "10.0.0.10"
	sc.NetworkInterfaces = []vpcsim.ENISpec{
		{ID: "eni-0000000000000007e", Subnet: simtest.NodeSubnetID, InterfaceType: "trunk", AttachTo: simtest.InstanceID, DeviceIndex: 2},
		{ID: "eni-00000000000000f0e", Subnet: simtest.NodeSubnetID, AttachTo: simtest.InstanceID, DeviceIndex: 1, SecondaryIPCount: 3,
			Tags: map[string]string{"node.k8s.amazonaws.com/no_manage": "true"}},
	}
	env := simtest.Start(t, sc)
	v, err := env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if v.PrimaryIP.String() != "10.0.0.10" || !v.PublicIP.IsValid() || len(v.ENIs) != 3 {
		t.Fatalf("instance: %+v", v)
	}
	if v.ENIs[2].ID != "eni-0000000000000007e" || v.ENIs[2].InterfaceType != "trunk" || len(v.ENIs[1].SecondaryIPs) != 3 {
		t.Fatalf("scenario ENIs: %+v", v.ENIs)
	}
	if got, err := getMeta(t, newIMDS(env.IMDSURL(simtest.InstanceID)), "public-ipv4"); err != nil || got != v.PublicIP.String() {
		t.Fatalf("public-ipv4: %q %v", got, err)
	}
	// a trunk cannot go on a type without trunking
	sc2 := simtest.Basic()
	sc2.Instances[0].Type = "t3.medium"
	sc2.NetworkInterfaces = []vpcsim.ENISpec{{Subnet: simtest.NodeSubnetID, InterfaceType: "trunk", AttachTo: simtest.InstanceID, DeviceIndex: 1}}
	if _, err := vpcsim.New(sc2); err == nil || !strings.Contains(err.Error(), "trunk") {
		t.Fatalf("trunk on t3.medium: %v", err)
	}
}
