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

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"default", "us-west-2a", "team.blue-1"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"My_Config", "us-west-2a ", "team/blue", "-a", ""} {
		if err := ValidateName(bad); err == nil || !strings.Contains(err.Error(), "not a valid object name") {
			t.Errorf("ValidateName(%q) = %v, want not a valid object name", bad, err)
		}
	}
}

func TestSelectorValidate(t *testing.T) {
	for _, ok := range []Selector{{}, {LabelKey: "topology.kubernetes.io/zone"}, {AnnotationKey: "example.com/eni"}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	err := Selector{LabelKey: "topology.kubernetes.io/zone ", AnnotationKey: "a/b/c"}.Validate()
	for _, s := range []string{`ENI_CONFIG_LABEL_DEF="topology.kubernetes.io/zone "`, `ENI_CONFIG_ANNOTATION_DEF="a/b/c"`} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not name %s", err, s)
		}
	}
}
