package k8s

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
)

// A node whose label or annotation holds a value that cannot be an object
// name (upper case, '_', a space, a '/') gets an error saying so, naming
// the key and the value, not "does not exist": no ENIConfig can be created
// under that name, as the API server confirms.
func TestENIConfigNameNotAnObjectName(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	const ann = "example.com/eni-config"
	for i, bad := range []string{"My_Config", "us-west-2a ", "team/blue"} {
		node := "bad-eniconfig-name-" + string(rune('a'+i))
		createNode(t, admin, node, map[string]string{eniconfig.DefaultKey: "ignored"}, map[string]string{ann: bad})
		ec := &eniconfig.ENIConfig{ObjectMeta: metav1.ObjectMeta{Name: bad}, Spec: eniconfig.Spec{Subnet: "subnet-0000000a"}}
		if err := admin.Create(ctx, ec); err == nil {
			_ = admin.Delete(ctx, ec)
			t.Fatalf("the API server accepted an ENIConfig named %q", bad)
		} else {
			t.Logf("create ENIConfig %q: %v", bad, err)
		}
		c := newClient(t, env, Config{NodeName: node, Features: Features{CustomNetworking: true}, ENIConfigSelector: eniconfig.Selector{AnnotationKey: ann}})
		_, err := c.ENIConfigForNode(ctx)
		if !errors.Is(err, ErrENIConfigNotFound) {
			t.Fatalf("%q: want ErrENIConfigNotFound, got %v", bad, err)
		}
		for _, s := range []string{node, "annotation " + ann, strconv.Quote(bad), "not a valid object name"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not say %s", err, s)
			}
		}
	}
}
