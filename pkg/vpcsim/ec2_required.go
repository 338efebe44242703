package vpcsim

import "strings"

// required lists, per action, the parameters EC2 refuses a request without
// (MissingParameter): the required members of the action's input in
// aws-sdk-go-v2's service/ec2 validators, by their wire names, in the order
// the action checks them. "Name.N" is a list that needs one member; an
// empty string value counts as missing, except for a number ("#Name"),
// where it is an invalid value.
var required = map[string][]string{
	"CreateNetworkInterface":           {"SubnetId"},
	"AttachNetworkInterface":           {"NetworkInterfaceId", "InstanceId", "#DeviceIndex"},
	"DetachNetworkInterface":           {"AttachmentId"},
	"DeleteNetworkInterface":           {"NetworkInterfaceId"},
	"ModifyNetworkInterfaceAttribute":  {"NetworkInterfaceId"},
	"AssignPrivateIpAddresses":         {"NetworkInterfaceId"},
	"UnassignPrivateIpAddresses":       {"NetworkInterfaceId"},
	"AssignIpv6Addresses":              {"NetworkInterfaceId"},
	"UnassignIpv6Addresses":            {"NetworkInterfaceId"},
	"CreateTags":                       {"ResourceId.N", "Tag.N"},
	"DeleteTags":                       {"ResourceId.N"},
	"RunInstances":                     {"#MinCount", "#MaxCount"},
	"TerminateInstances":               {"InstanceId.N"},
	"ModifyInstanceMetadataOptions":    {"InstanceId"},
	"AssociateTrunkInterface":          {"BranchInterfaceId", "TrunkInterfaceId"},
	"DisassociateTrunkInterface":       {"AssociationId"},
	"CreateNetworkInterfacePermission": {"NetworkInterfaceId", "Permission"},
	"CreateSecurityGroup":              {"GroupName", "GroupDescription"},
}

// missingParam is the MissingParameter error for the action's first
// required parameter the request lacks, or nil.
func missingParam(action string, p *params) *APIError {
	for _, name := range required[action] {
		if list, ok := strings.CutSuffix(name, ".N"); ok {
			if len(p.indices(list)) == 0 {
				return errMissing(list)
			}
			continue
		}
		if num, ok := strings.CutPrefix(name, "#"); ok {
			if !p.has(num) {
				return errMissing(num)
			}
			continue
		}
		if p.str(name) == "" {
			return errMissing(name)
		}
	}
	return nil
}
