package entry

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// FuzzValidateConfigAgreesWithEncodingJSON: validateConfig, which reads
// the netconf with confscan when it can, answers as a decode with
// encoding/json alone would: the same version, or the same error.
func FuzzValidateConfigAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"cniVersion":"1.0.0","name":"aws-cni","type":"aws-cni"}`,
		`{"name":"aws-cni"}`,
		`{"cniVersion":"0.4.0","name":"aws-cni","Name":"x"}`,
		`{"cniVersion":"0.4.0","name":"aws-cni","name":"b"}`,
		"{\"cniVersion\":\"0.4.0\",\"\u212Aame\":\"x\",\"name\":\"aws-cni\"}",
		`{"cniVersion":1,"name":"aws-cni"}`,
		`{"cniVersion":null,"name":"a\u0062"}`,
		"\xef\xbb\xbf{\"name\":\"a\"}",
		`null`,
		`[]`,
		`{"name":"a"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, gotErr := validateConfig(in)
		want, wantErr := validateWithEncodingJSON(in)
		if got != want || !reflect.DeepEqual(gotErr, wantErr) {
			t.Fatalf("validateConfig(%q) = %q, %v; encoding/json alone %q, %v", in, got, gotErr, want, wantErr)
		}
	})
}

// validateWithEncodingJSON is validateConfig decoding with encoding/json
// only.
func validateWithEncodingJSON(stdin []byte) (string, *types.Error) {
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
	}
	if err := json.Unmarshal(stdin, &conf); err != nil {
		return "", types.NewError(types.ErrDecodingFailure, "error unmarshall network config: "+err.Error(), "")
	}
	switch {
	case conf.Name == "":
		return "", types.NewError(types.ErrInvalidNetworkConfig, "missing network name", "")
	case !validName(conf.Name):
		return "", types.NewError(types.ErrInvalidNetworkConfig, "invalid characters found in network name", conf.Name)
	case conf.CNIVersion == "":
		return "0.1.0", nil
	}
	return conf.CNIVersion, nil
}
