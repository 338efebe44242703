package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"unicode/utf8"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// printResult writes res in cniVersion to stdout, byte for byte as the CNI
// library's types.PrintResult does. The library converts the result to
// the version's types by reflection and, for 1.x, marshals it, reads it
// back into a map and marshals that again (to drop an empty "dns"), all on
// the critical path of every ADD; encodeResult writes the same bytes
// directly for the results ADD makes, and anything else goes through the
// library.
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
// path, PCI ID) or the version is neither one of types/100's nor one of
// types/040's (0.3.0, 0.3.1 and 0.4.0: upstream's conflist says 0.4.0).
func encodeResult(res *current.Result, cniVersion string) ([]byte, bool) {
	var legacy bool // types/040's layout
	switch cniVersion {
	case "1.0.0", "1.1.0":
	case "0.3.0", "0.3.1", "0.4.0":
		legacy = true
	default:
		return nil, false
	}
	if len(res.Routes) > 0 || !res.DNS.IsEmpty() {
		return nil, false
	}
	// types/100's map round trip sorts every object's keys; types/040
	// marshals its structs, so its keys come in field order.
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
			b = appendInterface(b, ifc, legacy)
		}
		b = append(b, ']')
	}
	if len(res.IPs) > 0 {
		b = append(b, `,"ips":[`...)
		for i, ipc := range res.IPs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendIPConfig(b, ipc, legacy)
		}
		b = append(b, ']')
	}
	if legacy {
		b = append(b, `,"dns":{}`...) // a struct: omitempty keeps it
	}
	b = append(b, '}')
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "    "); err != nil {
		return nil, false
	}
	return out.Bytes(), true
}

func appendInterface(b []byte, ifc *current.Interface, legacy bool) []byte {
	b = append(b, '{')
	if legacy {
		b = append(append(b, `"name":`...), jsonString(ifc.Name)...)
		if ifc.Mac != "" {
			b = append(append(b, `,"mac":`...), jsonString(ifc.Mac)...)
		}
	} else {
		if ifc.Mac != "" {
			b = append(append(append(b, `"mac":`...), jsonString(ifc.Mac)...), ',')
		}
		b = append(append(b, `"name":`...), jsonString(ifc.Name)...)
	}
	if ifc.Sandbox != "" {
		b = append(append(b, `,"sandbox":`...), jsonString(ifc.Sandbox)...)
	}
	return append(b, '}')
}

func appendIPConfig(b []byte, ipc *current.IPConfig, legacy bool) []byte {
	if legacy {
		// version, interface, address, gateway: types/040's ipConfig.
		version := "6"
		if ipc.Address.IP.To4() != nil {
			version = "4"
		}
		b = append(append(b, `{"version":`...), jsonString(version)...)
		if ipc.Interface != nil {
			b = strconv.AppendInt(append(b, `,"interface":`...), int64(*ipc.Interface), 10)
		}
		b = append(append(b, `,"address":`...), jsonString(ipc.Address.String())...)
		if len(ipc.Gateway) > 0 {
			b = append(append(b, `,"gateway":`...), jsonString(ipc.Gateway.String())...)
		}
		return append(b, '}')
	}
	b = append(append(b, `{"address":`...), jsonString(ipc.Address.String())...)
	if len(ipc.Gateway) > 0 {
		b = append(append(b, `,"gateway":`...), jsonString(ipc.Gateway.String())...)
	}
	if ipc.Interface != nil {
		b = strconv.AppendInt(append(b, `,"interface":`...), int64(*ipc.Interface), 10)
	}
	return append(b, '}')
}

// jsonString is s as json.Marshal writes it: quoted; '"', '\\' and the
// control characters escaped (\b, \f, \n, \r, \t by name, the others as
// \u00XX); '<', '>', '&', U+2028 and U+2029 as \u escapes (HTML-safe);
// each byte that is not part of valid UTF-8 as \ufffd. Written here, not
// marshalled: the encoder's first use costs a fresh process its reflective
// set-up, and the ADD result is all strings.
func jsonString(s string) []byte {
	const hexDigits = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && n == 1:
				b = append(b, `\ufffd`...)
			case r == '\u2028' || r == '\u2029':
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			default:
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '<', '>', '&':
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			} else {
				b = append(b, c)
			}
		}
		i++
	}
	return append(b, '"')
}
