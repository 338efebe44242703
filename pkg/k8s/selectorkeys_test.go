package k8s

import (
	"log/slog"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
)

// An ENI_CONFIG_LABEL_DEF or ENI_CONFIG_ANNOTATION_DEF that is not a valid
// key (two '/', a space inside, a '!') can never match a node label or
// annotation, so every node silently used the default ENIConfig (or waited
// for one named "default"). ipamd's log now says so at start, naming the
// variable and its value.
func TestUnusableENIConfigKeyWarned(t *testing.T) {
	for _, tt := range []struct {
		sel  eniconfig.Selector
		want string // "" means no warning
	}{
		{sel: eniconfig.Selector{LabelKey: "topology.kubernetes.io/zone"}},
		{sel: eniconfig.Selector{LabelKey: "topology.kubernetes.io/zone/a"}, want: `ENI_CONFIG_LABEL_DEF="topology.kubernetes.io/zone/a"`},
		{sel: eniconfig.Selector{AnnotationKey: "example.com/eni config"}, want: `ENI_CONFIG_ANNOTATION_DEF="example.com/eni config"`},
	} {
		var logs syncBuffer
		_, err := New(Config{
			RESTConfig: &rest.Config{Host: "https://127.0.0.1:1"}, NodeName: "n",
			Features: Features{CustomNetworking: true}, ENIConfigSelector: tt.sel,
			Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		got := logs.String()
		switch {
		case tt.want == "" && strings.Contains(got, "level=WARN"):
			t.Errorf("%+v: unexpected warning %s", tt.sel, got)
		case tt.want != "" && (!strings.Contains(got, "level=WARN") || !strings.Contains(got, strings.ReplaceAll(tt.want, `"`, `\"`))):
			t.Errorf("%+v: log %q does not warn about %s", tt.sel, got, tt.want)
		}
	}
}
