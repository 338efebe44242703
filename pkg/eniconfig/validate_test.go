package eniconfig

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr []string // substrings; nil means valid
	}{
		{name: "subnet only", spec: Spec{Subnet: "subnet-0a1b2c3d4e5f60718"}},
		{name: "subnet and groups", spec: Spec{Subnet: "subnet-0a1b2c3d", SecurityGroups: []string{"sg-0123abcd", "sg-0123abce"}}},
		{name: "empty subnet", spec: Spec{}, wantErr: []string{`"az1": spec.subnet is empty`}},
		{name: "subnet not an id", spec: Spec{Subnet: "my-subnet"}, wantErr: []string{`spec.subnet "my-subnet" is not a subnet id`}},
		{name: "subnet upper case", spec: Spec{Subnet: "subnet-0A1B"}, wantErr: []string{`"subnet-0A1B" is not a subnet id`}},
		{
			name:    "bad and duplicate groups, all reported",
			spec:    Spec{Subnet: "x", SecurityGroups: []string{"sg-01", "default", "sg-01"}},
			wantErr: []string{`spec.subnet "x"`, `securityGroups[1] "default" is not a security group id`, `securityGroups[2] "sg-01" is listed twice`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate("az1", tt.spec)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted an invalid spec")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}
