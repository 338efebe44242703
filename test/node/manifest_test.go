package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
)

// localVPCEnv is what a real AWS region gives ipamd for free and the local
// VPC must spell out: the EC2 endpoint (vpcsim's, inside the VPC) and
// credentials. Everything else comes from the manifest unchanged.
func localVPCEnv(region string) map[string]string {
	return map[string]string{
		"AWS_REGION":            region,
		"AWS_DEFAULT_REGION":    region,
		"AWS_ACCESS_KEY_ID":     "AKIDLOCALVPC",
		"AWS_SECRET_ACCESS_KEY": "localvpc",
		"AWS_EC2_ENDPOINT":      "http://169.254.169.253:80",
		"AWS_ENDPOINT_URL_EC2":  "http://169.254.169.253:80",
	}
}

// deployManifest writes a copy of misc/aws-k8s-cni.yaml with the images
// renamed to the local ones (tag "dev") and the local VPC's endpoints
// added to the aws-node container, and returns its path.
func deployManifest(t *testing.T, region string) string {
	t.Helper()
	objs, err := kubeenv.ReadManifest(filepath.Join(agentbin.RepoRoot(), "misc", "aws-k8s-cni.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, o := range objs {
		if o.GetKind() == "DaemonSet" && o.GetName() == "aws-node" {
			if err := localizeDaemonSet(o, region); err != nil {
				t.Fatal(err)
			}
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	p := filepath.Join(t.TempDir(), "aws-k8s-cni.yaml")
	if err := os.WriteFile(p, []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func localizeDaemonSet(ds *unstructured.Unstructured, region string) error {
	for _, field := range []string{"initContainers", "containers"} {
		cs, _, err := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", field)
		if err != nil {
			return fmt.Errorf("DaemonSet %s: %w", field, err)
		}
		for i, c := range cs {
			cm := c.(map[string]any)
			img, _ := cm["image"].(string)
			if !strings.HasPrefix(img, "vpc-cni/") {
				return fmt.Errorf("DaemonSet %s[%d]: image %q is not a vpc-cni image", field, i, img)
			}
			cm["image"] = "localhost/" + img
			if cm["name"] == "aws-node" {
				env, _ := cm["env"].([]any)
				add := localVPCEnv(region)
				var kept []any
				for _, e := range env { // later duplicates would be ambiguous
					if _, replaced := add[e.(map[string]any)["name"].(string)]; !replaced {
						kept = append(kept, e)
					}
				}
				env = kept
				for k, v := range add {
					env = append(env, map[string]any{"name": k, "value": v})
				}
				cm["env"] = env
			}
			cs[i] = cm
		}
		if err := unstructured.SetNestedSlice(ds.Object, cs, "spec", "template", "spec", field); err != nil {
			return err
		}
	}
	return nil
}
