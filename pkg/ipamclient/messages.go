package ipamclient

import (
	"strconv"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
)

// The messages the plugin exchanges, with rpc/rpc.proto's field numbers.
// Requests are only encoded and replies only decoded: the plugin is a
// client. Field names follow the generated rpc package so a reader can
// match them.

// AddNetworkRequest is rpc.AddNetworkRequest (fields 1–9 in this order).
type AddNetworkRequest struct {
	K8SPodName, K8SPodNamespace, K8SPodInfraContainerId    string
	Netns, IfName, NetworkName, ContainerId, ClientVersion string
	RequiresMultiNicAttachment                             bool
	// PodUID (CNI_ARGS K8S_POD_UID) goes as gRPC metadata
	// (hostcontract.PodUIDMetadata), not in the message, which is
	// upstream's; it is left out unless printable ASCII, as gRPC requires
	// of a metadata value.
	PodUID string
}

// metadata is the request's custom gRPC metadata. A UID longer than
// Kubernetes allows is left out too: writeHeaders sends every header in
// one frame of the minimum size.
func (m *AddNetworkRequest) metadata() []headerField {
	if m.PodUID == "" || len(m.PodUID) > 256 {
		return nil
	}
	for i := 0; i < len(m.PodUID); i++ {
		if c := m.PodUID[i]; c < 0x20 || c > 0x7e {
			return nil
		}
	}
	return []headerField{{hostcontract.PodUIDMetadata, m.PodUID}}
}

func (m *AddNetworkRequest) marshal() []byte {
	var e enc
	e.strs(1, m.K8SPodName, m.K8SPodNamespace, m.K8SPodInfraContainerId,
		m.Netns, m.IfName, m.NetworkName, m.ContainerId, m.ClientVersion)
	e.boolean(9, m.RequiresMultiNicAttachment)
	return e
}

// IPAllocationMetadata is rpc.IPAllocationMetadata: one pod interface's
// address.
type IPAllocationMetadata struct {
	Ipv4Addr     string
	Ipv6Addr     string
	DeviceNumber int32
	RouteTableId int32
}

func (m *IPAllocationMetadata) unmarshal(b []byte) error {
	return decodeFields(b, func(num, typ int, v uint64, data []byte) error {
		switch {
		case num == 1 && typ == wireLen:
			m.Ipv4Addr = string(data)
		case num == 2 && typ == wireLen:
			m.Ipv6Addr = string(data)
		case num == 3 && typ == wireVarint:
			m.DeviceNumber = int32(v)
		case num == 4 && typ == wireVarint:
			m.RouteTableId = int32(v)
		}
		return nil
	})
}

func decodeMeta(data []byte) (*IPAllocationMetadata, error) {
	m := &IPAllocationMetadata{}
	if err := m.unmarshal(data); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeReplyHead decodes fields 1 (success) and 2 (the addresses), which
// both replies share; done is false for any other field.
func decodeReplyHead(num, typ int, v uint64, data []byte, success *bool, metas *[]*IPAllocationMetadata) (done bool, err error) {
	switch {
	case num == 1 && typ == wireVarint:
		*success = v != 0
	case num == 2 && typ == wireLen:
		meta, err := decodeMeta(data)
		if err != nil {
			return true, err
		}
		*metas = append(*metas, meta)
	default:
		return false, nil
	}
	return true, nil
}

// AddNetworkReply is rpc.AddNetworkReply.
type AddNetworkReply struct {
	Success              bool
	IpAllocationMetadata []*IPAllocationMetadata
	UseExternalSnat      bool
	VpcV4Cidrs           []string
	PodVlanId            int32
	PodEniMac            string
	PodEniSubnetGw       string
	ParentIfIndex        int32
	VpcV6Cidrs           []string
	NetworkPolicyMode    string
}

func (m *AddNetworkReply) unmarshal(b []byte) error {
	return decodeFields(b, func(num, typ int, v uint64, data []byte) error {
		if done, err := decodeReplyHead(num, typ, v, data, &m.Success, &m.IpAllocationMetadata); done {
			return err
		}
		switch {
		case num == 5 && typ == wireVarint:
			m.UseExternalSnat = v != 0
		case num == 6 && typ == wireLen:
			m.VpcV4Cidrs = append(m.VpcV4Cidrs, string(data))
		case num == 7 && typ == wireVarint:
			m.PodVlanId = int32(v)
		case num == 8 && typ == wireLen:
			m.PodEniMac = string(data)
		case num == 9 && typ == wireLen:
			m.PodEniSubnetGw = string(data)
		case num == 10 && typ == wireVarint:
			m.ParentIfIndex = int32(v)
		case num == 12 && typ == wireLen:
			m.VpcV6Cidrs = append(m.VpcV6Cidrs, string(data))
		case num == 13 && typ == wireLen:
			m.NetworkPolicyMode = string(data)
		}
		return nil
	})
}

// DelNetworkRequest is rpc.DelNetworkRequest (fields 1–3 and 5–10 in this
// order; field 4 is reserved).
type DelNetworkRequest struct {
	K8SPodName, K8SPodNamespace, K8SPodInfraContainerId                string
	Reason, IfName, NetworkName, ContainerId, ClientVersion, K8SPodUid string
}

func (m *DelNetworkRequest) marshal() []byte {
	var e enc
	e.strs(1, m.K8SPodName, m.K8SPodNamespace, m.K8SPodInfraContainerId)
	e.strs(5, m.Reason, m.IfName, m.NetworkName, m.ContainerId, m.ClientVersion, m.K8SPodUid)
	return e
}

// DelNetworkReply is rpc.DelNetworkReply.
type DelNetworkReply struct {
	Success              bool
	IpAllocationMetadata []*IPAllocationMetadata
	PodVlanId            int32
	NetworkPolicyMode    string
}

func (m *DelNetworkReply) unmarshal(b []byte) error {
	return decodeFields(b, func(num, typ int, v uint64, data []byte) error {
		if done, err := decodeReplyHead(num, typ, v, data, &m.Success, &m.IpAllocationMetadata); done {
			return err
		}
		switch {
		case num == 4 && typ == wireVarint:
			m.PodVlanId = int32(v)
		case num == 6 && typ == wireLen:
			m.NetworkPolicyMode = string(data)
		}
		return nil
	})
}

// EnforceNpRequest is rpc.EnforceNpRequest, sent to the network policy agent.
type EnforceNpRequest struct {
	K8SPodName        string
	K8SPodNamespace   string
	NetworkPolicyMode string
	InterfaceCount    int32
}

func (m *EnforceNpRequest) marshal() []byte {
	var e enc
	e.str(1, m.K8SPodName)
	e.str(2, m.K8SPodNamespace)
	e.str(3, m.NetworkPolicyMode)
	e.int32(4, m.InterfaceCount)
	return e
}

// DeleteNpRequest is rpc.DeleteNpRequest.
type DeleteNpRequest struct {
	K8SPodName      string
	K8SPodNamespace string
}

func (m *DeleteNpRequest) marshal() []byte {
	var e enc
	e.str(1, m.K8SPodName)
	e.str(2, m.K8SPodNamespace)
	return e
}

// successReply is rpc.EnforceNpReply and rpc.DeleteNpReply: one bool.
type successReply struct {
	Success bool
}

func (m *successReply) unmarshal(b []byte) error {
	return decodeFields(b, func(num, typ int, v uint64, _ []byte) error {
		if num == 1 && typ == wireVarint {
			m.Success = v != 0
		}
		return nil
	})
}

// HealthStatus is grpc.health.v1.HealthCheckResponse.ServingStatus.
type HealthStatus int32

// The serving states of the standard gRPC health service.
const (
	HealthUnknown        HealthStatus = 0
	HealthServing        HealthStatus = 1
	HealthNotServing     HealthStatus = 2
	HealthServiceUnknown HealthStatus = 3
)

func (s HealthStatus) String() string {
	switch s {
	case HealthUnknown:
		return "UNKNOWN"
	case HealthServing:
		return "SERVING"
	case HealthNotServing:
		return "NOT_SERVING"
	case HealthServiceUnknown:
		return "SERVICE_UNKNOWN"
	}
	return "HealthStatus(" + strconv.Itoa(int(s)) + ")"
}

// healthRequest is grpc.health.v1.HealthCheckRequest: the service name,
// empty for the server as a whole.
type healthRequest struct {
	Service string
}

func (m *healthRequest) marshal() []byte {
	var e enc
	e.str(1, m.Service)
	return e
}

type healthReply struct {
	Status HealthStatus
}

func (m *healthReply) unmarshal(b []byte) error {
	return decodeFields(b, func(num, typ int, v uint64, _ []byte) error {
		if num == 1 && typ == wireVarint {
			m.Status = HealthStatus(int32(v))
		}
		return nil
	})
}
