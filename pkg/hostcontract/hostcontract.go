// Package hostcontract holds the numbers and paths a node shares with
// upstream aws-node: policy-rule priorities, route-table numbers, the
// ipamd socket, the checkpoint path and the host veth prefix. The plugin,
// ipamd and networkutils all read them from here, so a node can switch
// between upstream and vpc-cni with running pods (docs/compatibility.md,
// "Rule priorities, route tables and gateways" and "Files and paths").
//
// It imports nothing: the plugin's import graph must stay small.
package hostcontract

// Policy-rule priorities (docs/compatibility.md, "Rule priorities, route
// tables and gateways").
const (
	// PriorityPodFromIf is the pod-side rule of additional interfaces.
	PriorityPodFromIf = 1
	// PriorityIIF holds the iif rules of strict-mode branch-ENI pods.
	PriorityIIF = 10
	// PriorityLocal is where ipamd moves the `lookup local` rule when
	// branch ENIs run in strict mode.
	PriorityLocal = 20
	// PriorityToPod is `to <pod> lookup main`.
	PriorityToPod = 512
	// PriorityFwmark is `fwmark <mark>/<mark> lookup main`.
	PriorityFwmark = 1024
	// PriorityExternalService is `to <cidr> lookup main` per
	// AWS_EXTERNAL_SERVICE_CIDRS entry.
	PriorityExternalService = 1535
	// PriorityFromPod is `from <pod> lookup <eni table>`.
	PriorityFromPod = 1536
	// PriorityENI is `from <ENI primary address> lookup <eni table>`.
	PriorityENI = 32765
)

// MainTable is the kernel's main routing table (the primary ENI's table).
const MainTable = 254

// VLANTableBase plus a branch ENI's VLAN id is that branch's route table.
const VLANTableBase = 100

// RouteTable returns the route table of device d on network card n:
// card 0 device 0 is main, card 0 device d>0 is d+1, and card n>0 uses
// 10000+d+100·n (the Amazon Linux ec2-net-utils numbering).
func RouteTable(networkCard, device int) int {
	if networkCard == 0 {
		if device == 0 {
			return MainTable
		}
		return device + 1
	}
	return 10000 + device + 100*networkCard
}

// Files and sockets (docs/compatibility.md, "Files and paths").
const (
	// IpamdSocket is ipamd's gRPC Unix socket, which the plugin dials.
	IpamdSocket = "/var/run/aws-node/ipamd.sock"
	// NPASocket is the network-policy agent's gRPC socket.
	NPASocket = "/var/run/aws-node/npa.sock"
	// CheckpointPath is ipamd's checkpoint of network card 0.
	CheckpointPath = "/var/run/aws-node/ipam.json"
)

// VethPrefix is the host veth prefix when the configuration sets none.
const VethPrefix = "eni"

// PodUIDMetadata is the gRPC metadata key under which our plugin sends the
// pod's UID (CNI_ARGS K8S_POD_UID) with AddNetwork: the message, upstream's,
// has no field for it, and upstream's ipamd ignores metadata it does not
// know. ipamd uses it to tell a pod from an earlier pod of the same name.
const PodUIDMetadata = "vpc-cni-k8s-pod-uid"
