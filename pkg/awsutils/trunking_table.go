// Code generated from EC2's instance-type trunking facts; DO NOT EDIT.
//
// Source: the trunking column of EC2's instance-type network limits, as
// compiled for the VPC resource controller. The types below cannot trunk; every other type can.
// TestTrunkingTableMatchesRepositoryCatalogs checks the list against the
// repository's other copies of these facts (pkg/resourcecontroller's
// branch_limits.tsv and vpcsim's catalog.tsv).

package awsutils

// nonTrunkingTypes are the instance types that cannot trunk ENIs (no branch
// ENIs, so no security groups per pod): 104 of the 1164 types listed when this
// was generated. Sorted, for binary search.
var nonTrunkingTypes = []string{
	"c1.medium", "c1.xlarge",
	"c3.2xlarge", "c3.4xlarge", "c3.8xlarge", "c3.large", "c3.xlarge",
	"c4.2xlarge", "c4.4xlarge", "c4.8xlarge", "c4.large", "c4.xlarge",
	"d2.2xlarge", "d2.4xlarge", "d2.8xlarge", "d2.xlarge",
	"f1.16xlarge", "f1.2xlarge", "f1.4xlarge",
	"h1.16xlarge", "h1.2xlarge", "h1.4xlarge", "h1.8xlarge",
	"i2.2xlarge", "i2.4xlarge", "i2.8xlarge", "i2.xlarge",
	"i3.16xlarge", "i3.2xlarge", "i3.4xlarge", "i3.8xlarge", "i3.large", "i3.xlarge",
	"i4i.large",
	"m1.large", "m1.medium", "m1.small", "m1.xlarge",
	"m2.2xlarge", "m2.4xlarge", "m2.xlarge",
	"m3.2xlarge", "m3.large", "m3.medium", "m3.xlarge",
	"m4.10xlarge", "m4.16xlarge", "m4.2xlarge", "m4.4xlarge", "m4.large", "m4.xlarge",
	"p3.16xlarge", "p3.2xlarge", "p3.8xlarge",
	"r3.2xlarge", "r3.4xlarge", "r3.8xlarge", "r3.large", "r3.xlarge",
	"r4.16xlarge", "r4.2xlarge", "r4.4xlarge", "r4.8xlarge", "r4.large", "r4.xlarge",
	"t1.micro",
	"t2.2xlarge", "t2.large", "t2.medium", "t2.micro", "t2.nano", "t2.small", "t2.xlarge",
	"t3.2xlarge", "t3.large", "t3.medium", "t3.micro", "t3.nano", "t3.small", "t3.xlarge",
	"t3a.2xlarge", "t3a.large", "t3a.medium", "t3a.micro", "t3a.nano", "t3a.small", "t3a.xlarge",
	"t4g.2xlarge", "t4g.large", "t4g.medium", "t4g.micro", "t4g.nano", "t4g.small", "t4g.xlarge",
	"u-6tb1.112xlarge", "u-6tb1.56xlarge",
	"x1.16xlarge", "x1.32xlarge",
	"x1e.16xlarge", "x1e.2xlarge", "x1e.32xlarge", "x1e.4xlarge", "x1e.8xlarge", "x1e.xlarge",
}
