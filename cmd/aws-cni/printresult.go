package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// printResult writes res in cniVersion to stdout, byte for byte as the CNI
// library's types.PrintResult does. The library marshals the result, reads
// it back into a map and marshals that again (to drop an empty "dns"), all
// by reflection, on the critical path of every ADD; encodeResult writes the
// same bytes directly for the results ADD makes, and anything else goes
// through the library.
func printResult(res *current.Result, cniVersion string) error {
	b, ok := encodeResult(res, cniVersion)
	if !ok {
		return types.PrintResult(res, cniVersion)
	}
	_, err := os.Stdout.Write(b)
	return err
}

// encodeResult returns the library's output for res in cniVersion, or false
// when res has what ADD never sets (routes, DNS, interface MTU, socket
// path, PCI ID) or the version is not one of types/100's.
func encodeResult(res *current.Result, cniVersion string) ([]byte, bool) {
	if cniVersion != "1.0.0" && cniVersion != "1.1.0" || len(res.Routes) > 0 || !res.DNS.IsEmpty() {
		return nil, false
	}
	// The library's map round trip sorts every object's keys.
	b := append([]byte(`{"cniVersion":`), jsonString(cniVersion)...)
	if len(res.Interfaces) > 0 {
		b = append(b, `,"interfaces":[`...)
		for i, ifc := range res.Interfaces {
			if ifc.Mtu != 0 || ifc.SocketPath != "" || ifc.PciID != "" {
				return nil, false
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			if ifc.Mac != "" {
				b = append(append(append(b, `"mac":`...), jsonString(ifc.Mac)...), ',')
			}
			b = append(append(b, `"name":`...), jsonString(ifc.Name)...)
			if ifc.Sandbox != "" {
				b = append(append(b, `,"sandbox":`...), jsonString(ifc.Sandbox)...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(res.IPs) > 0 {
		b = append(b, `,"ips":[`...)
		for i, ipc := range res.IPs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(append(b, `{"address":`...), jsonString(ipc.Address.String())...)
			if len(ipc.Gateway) > 0 {
				b = append(append(b, `,"gateway":`...), jsonString(ipc.Gateway.String())...)
			}
			if ipc.Interface != nil {
				b = strconv.AppendInt(append(b, `,"interface":`...), int64(*ipc.Interface), 10)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, '}')
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "    "); err != nil {
		return nil, false
	}
	return out.Bytes(), true
}

// jsonString is s as encoding/json writes it (HTML-safe escaping
// included).
func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}
