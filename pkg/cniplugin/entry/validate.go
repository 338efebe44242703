package entry

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/confscan"
)

// maxIfName is the kernel's limit on interface names (IFNAMSIZ-1).
const maxIfName = 15

// validateConfig checks the netconf's network name, as every command but
// VERSION needs one, and returns its CNI version as the CNI library's
// ConfigDecoder reads it ("0.1.0" when absent): one decode for both.
func validateConfig(stdin []byte) (string, *types.Error) {
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
	}
	// Without reflection when confscan can tell what encoding/json
	// would read (pkg/cniplugin/confscan).
	o, ok := confscan.Scan(stdin, "cniVersion", "name")
	if ok {
		conf.CNIVersion, ok = o.String("cniVersion")
	}
	if ok {
		conf.Name, ok = o.String("name")
	}
	if !ok {
		conf.CNIVersion, conf.Name = "", ""
		if err := json.Unmarshal(stdin, &conf); err != nil {
			return "", types.NewError(types.ErrDecodingFailure, fmt.Sprintf("error unmarshall network config: %v", err), "")
		}
	}
	if conf.Name == "" {
		return "", types.NewError(types.ErrInvalidNetworkConfig, "missing network name", "")
	}
	if !validName(conf.Name) {
		return "", types.NewError(types.ErrInvalidNetworkConfig, "invalid characters found in network name", conf.Name)
	}
	if conf.CNIVersion == "" {
		return "0.1.0", nil
	}
	return conf.CNIVersion, nil
}

func validateContainerID(id string) *types.Error {
	if !validName(id) {
		return types.NewError(types.ErrInvalidEnvironmentVariables, "invalid characters in containerID", id)
	}
	return nil
}

// validName reports whether s is a letter or digit followed by letters,
// digits, '_', '.' and '-' (ASCII only): the spec's container IDs and
// network names.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// validateIfName applies the kernel's rules for interface names.
func validateIfName(name string) *types.Error {
	switch {
	case name == "":
		return types.NewError(types.ErrInvalidEnvironmentVariables, "interface name is empty", "")
	case len(name) > maxIfName:
		return types.NewError(types.ErrInvalidEnvironmentVariables, "interface name is too long", fmt.Sprintf("interface name should be less than %d characters", maxIfName+1))
	case name == "." || name == "..":
		return types.NewError(types.ErrInvalidEnvironmentVariables, "interface name is . or ..", "")
	case strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || unicode.IsSpace(r) }):
		return types.NewError(types.ErrInvalidEnvironmentVariables, "interface name contains / or : or whitespace characters", "")
	}
	return nil
}
