package eniconfig

import "testing"

func TestResolve(t *testing.T) {
	const zone = "topology.kubernetes.io/zone"
	tests := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		sel         Selector
		want        string
		wantSource  Source
	}{
		{name: "nothing set", want: "default", wantSource: SourceDefault},
		{name: "default label", labels: map[string]string{DefaultKey: "blue"}, want: "blue", wantSource: SourceLabel},
		{name: "default annotation", annotations: map[string]string{DefaultKey: "green"}, want: "green", wantSource: SourceAnnotation},
		{
			name:        "annotation beats label",
			labels:      map[string]string{DefaultKey: "blue"},
			annotations: map[string]string{DefaultKey: "green"},
			want:        "green", wantSource: SourceAnnotation,
		},
		{
			name:        "external label beats everything",
			labels:      map[string]string{ExternalLabel: "ext", DefaultKey: "blue"},
			annotations: map[string]string{DefaultKey: "green"},
			want:        "ext", wantSource: SourceExternalLabel,
		},
		{
			name:   "zone label via ENI_CONFIG_LABEL_DEF",
			labels: map[string]string{zone: "us-west-2a", DefaultKey: "ignored"},
			sel:    Selector{LabelKey: zone},
			want:   "us-west-2a", wantSource: SourceLabel,
		},
		{
			name:        "custom annotation key ignores default key",
			annotations: map[string]string{DefaultKey: "ignored", "example.com/eni": "custom"},
			sel:         Selector{AnnotationKey: "example.com/eni"},
			want:        "custom", wantSource: SourceAnnotation,
		},
		{
			name:        "custom keys absent fall back to default name",
			labels:      map[string]string{DefaultKey: "ignored"},
			annotations: map[string]string{DefaultKey: "ignored"},
			sel:         Selector{LabelKey: zone, AnnotationKey: "example.com/eni"},
			want:        "default", wantSource: SourceDefault,
		},
		{
			name:   "empty values do not count",
			labels: map[string]string{ExternalLabel: "", DefaultKey: "blue"},
			want:   "blue", wantSource: SourceLabel,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, src, _ := Resolve(tt.labels, tt.annotations, tt.sel)
			if got != tt.want || src != tt.wantSource {
				t.Errorf("Resolve = %q (%s), want %q (%s)", got, src, tt.want, tt.wantSource)
			}
		})
	}
}
