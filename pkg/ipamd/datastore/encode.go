package datastore

import (
	"encoding/json"
	"net/netip"
	"strconv"
)

// appendFile renders f as upstream's JSON: exactly the bytes encoding/json
// writes for jsonFile (one object and a newline; field order, omitempty and
// HTML escaping included), built by appending instead of by reflection,
// since every checkpoint write pays for it. encodeFile is the reference it
// is tested against.
func appendFile(b []byte, f File) ([]byte, error) {
	var err error
	b = append(b, `{"version":`...)
	if b, err = appendString(b, f.Version); err != nil {
		return b, err
	}
	b = append(b, `,"allocations":[`...)
	for i, a := range f.Allocations {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendKeyFields(b, a.Key.NetworkName, a.Key.ContainerID, a.Key.IfName); err != nil {
			return b, err
		}
		b = appendAddr(append(b, ','), a.Addr)
		b = append(b, `,"allocationTimestamp":`...)
		b = strconv.AppendInt(b, unixNano(a.AssignedAt), 10)
		b = append(b, `,"metadata":`...)
		if b, err = appendMetadata(b, a.Meta.K8sPodNamespace, a.Meta.K8sPodName, a.Meta.InterfacesCount, a.extra.meta); err != nil {
			return b, err
		}
		b = appendExtra(b, a.extra.entry)
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(f.Cooling) > 0 {
		b = append(b, `,"unassigned":[`...)
		for i, c := range f.Cooling {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAddr(append(b, '{'), c.Addr)
			b = append(b, `,"unassignedTimestamp":`...)
			b = strconv.AppendInt(b, unixNano(c.UnassignedAt), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(appendExtra(b, f.extra), "}\n"...), nil
}

// appendAddr appends `"ipv4":"a"` or, for any other address, `"ipv6":"a"`
// (encodeFile's choice).
func appendAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		b = append(b, `"ipv4":"`...)
	} else {
		b = append(b, `"ipv6":"`...)
	}
	return append(a.AppendTo(b), '"')
}

// appendString appends s as a JSON string. Printable ASCII that needs no
// escape is copied; anything else goes through encoding/json, so the
// output stays exactly encoding/json's.
func appendString(b []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			return append(b, q...), err
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), nil
}

// appendBatch renders a log record's payload: exactly the bytes
// encoding/json writes for lb, built by appending, since every write pays
// for it between two syncs (and json.Marshal's reflection also grew the
// stack of each new writer goroutine).
func appendBatch(b []byte, lb logBatch) ([]byte, error) {
	b = append(b, '{')
	b, err := appendField(b, `"set":`, lb.Set, appendJSONAllocation)
	if err != nil {
		return b, err
	}
	b, err = appendField(b, `"cool":`, lb.Cool, func(b []byte, c jsonCooling) ([]byte, error) {
		b = append(b, '{')
		b, err := appendAddrFields(b, c.IPv4, c.IPv6)
		if err != nil {
			return b, err
		}
		b = append(b, `"unassignedTimestamp":`...)
		return append(strconv.AppendInt(b, c.UnassignedTimestamp, 10), '}'), nil
	})
	if err != nil {
		return b, err
	}
	if b, err = appendField(b, `"del":`, lb.Del, appendString); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

// appendField appends `key:[items…]` to an object being rendered, after a
// comma unless it is the object's first field; like encoding/json's
// omitempty, an empty list is left out.
func appendField[T any](b []byte, key string, items []T, each func([]byte, T) ([]byte, error)) ([]byte, error) {
	if len(items) == 0 {
		return b, nil
	}
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(append(b, key...), '[')
	var err error
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = each(b, it); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// appendJSONAllocation renders one jsonAllocation as encoding/json does.
func appendJSONAllocation(b []byte, a jsonAllocation) ([]byte, error) {
	b, err := appendKeyFields(b, a.NetworkName, a.ContainerID, a.IfName)
	if err != nil {
		return b, err
	}
	b = append(b, ',')
	if b, err = appendAddrFields(b, a.IPv4, a.IPv6); err != nil {
		return b, err
	}
	b = append(b, `"allocationTimestamp":`...)
	b = strconv.AppendInt(b, a.AllocationTimestamp, 10)
	if m := a.Metadata; m != nil {
		b = append(b, `,"metadata":`...)
		if b, err = appendMetadata(b, m.K8sPodNamespace, m.K8sPodName, m.InterfacesCount, ""); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendKeyFields opens an allocation object with its key:
// `{"networkName":…,"containerID":…,"ifName":…`.
func appendKeyFields(b []byte, network, container, ifName string) ([]byte, error) {
	var err error
	for _, kv := range [...]struct{ key, val string }{
		{`{"networkName":`, network}, {`,"containerID":`, container}, {`,"ifName":`, ifName},
	} {
		b = append(b, kv.key...)
		if b, err = appendString(b, kv.val); err != nil {
			return b, err
		}
	}
	return b, nil
}

// appendMetadata renders an allocation's metadata object, each field
// omitempty.
func appendMetadata(b []byte, namespace, name string, interfaces int, extra string) ([]byte, error) {
	var err error
	b = append(b, '{')
	for _, kv := range [...]struct{ key, val string }{{`"k8sPodNamespace":`, namespace}, {`"k8sPodName":`, name}} {
		if kv.val == "" {
			continue
		}
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = append(b, kv.key...)
		if b, err = appendString(b, kv.val); err != nil {
			return b, err
		}
	}
	if interfaces != 0 {
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = append(b, `"interfacesCount":`...)
		b = strconv.AppendInt(b, int64(interfaces), 10)
	}
	if extra != "" {
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = append(b, extra...)
	}
	return append(b, '}'), nil
}

// appendAddrFields appends the non-empty of `"ipv4":v4,` and `"ipv6":v6,`
// (both omitempty).
func appendAddrFields(b []byte, v4, v6 string) ([]byte, error) {
	var err error
	for _, kv := range [...]struct{ key, val string }{{`"ipv4":`, v4}, {`"ipv6":`, v6}} {
		if kv.val == "" {
			continue
		}
		b = append(b, kv.key...)
		if b, err = appendString(b, kv.val); err != nil {
			return b, err
		}
		b = append(b, ',')
	}
	return b, nil
}
