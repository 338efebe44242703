package resourcecontroller

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/vpc-cni/vpc-cni/pkg/apis/vpcresources/v1beta1"
)

// The webhook's patch must add the pod-eni request and touch nothing else:
// a pod from an API server newer than this controller's API types carries
// fields those types do not know, and a patch computed from a re-encoded
// pod would remove them (here spec.futureField and a container's
// futureSetting), silently changing every pod an SGP selects.
func TestKubeWebhookPatchKeepsUnknownFields(t *testing.T) {
	_, admin := kubeAdmin(t)
	ctx := context.Background()
	ns := fmt.Sprintf("rc-patch-%d", time.Now().UnixNano())
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})
	p := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "db"}}, SecurityGroups: v1beta1.GroupIDs{Groups: []string{sgDB}}}}
	if err := admin.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	cfg := Config{ClusterName: "test", Log: slog.New(slog.DiscardHandler)}
	cfg.defaults()
	c := &Controller{cfg: cfg, c: admin, api: admin}
	for name, raw := range map[string]string{
		"no resources": `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"` + ns + `","labels":{"role":"db"}},
			"spec":{"futureField":{"a":1},"containers":[{"name":"c","image":"x","futureSetting":true}]}}`,
		"other requests": `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"` + ns + `","labels":{"role":"db"}},
			"spec":{"futureField":{"a":1},"containers":[{"name":"c","image":"x","futureSetting":true,"resources":{"requests":{"cpu":"100m"},"futureResource":"y"}}]}}`,
	} {
		resp := podMutator{c: c}.Handle(ctx, admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
			Operation: admissionv1.Create, Namespace: ns, Object: runtime.RawExtension{Raw: []byte(raw)},
		}})
		if !resp.Allowed {
			t.Fatalf("%s: refused: %v", name, resp.Result)
		}
		ops := resp.Patch
		if len(resp.Patches) > 0 {
			var err error
			if ops, err = json.Marshal(resp.Patches); err != nil {
				t.Fatal(err)
			}
		}
		out, err := applyJSONPatch([]byte(raw), ops)
		if err != nil {
			t.Fatalf("%s: patch %s: %v", name, ops, err)
		}
		var got struct {
			Spec struct {
				FutureField map[string]any `json:"futureField"`
				Containers  []struct {
					FutureSetting *bool `json:"futureSetting"`
					Resources     struct {
						Requests, Limits map[string]string
						FutureResource   string `json:"futureResource"`
					} `json:"resources"`
				} `json:"containers"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		ctr := got.Spec.Containers[0]
		if got.Spec.FutureField == nil || ctr.FutureSetting == nil {
			t.Errorf("%s: the patch %s drops fields the controller's types do not know", name, ops)
		}
		if ctr.Resources.Requests[PodENIResource] != "1" || ctr.Resources.Limits[PodENIResource] != "1" {
			t.Errorf("%s: the patched pod does not ask for %s: %s", name, PodENIResource, out)
		}
		if name == "other requests" && (ctr.Resources.Requests["cpu"] != "100m" || ctr.Resources.FutureResource != "y") {
			t.Errorf("%s: the patch changed other resources: %s", name, out)
		}
	}
}

// applyJSONPatch applies RFC 6902 add, replace and remove operations (what
// admission patches use) to doc.
func applyJSONPatch(doc, patch []byte) ([]byte, error) {
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, err
	}
	var ops []struct {
		Op    string          `json:"op"`
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		return nil, err
	}
	for _, op := range ops {
		var v any
		if op.Op != "remove" {
			if err := json.Unmarshal(op.Value, &v); err != nil {
				return nil, fmt.Errorf("%s %s: %w", op.Op, op.Path, err)
			}
		}
		keys := strings.Split(op.Path, "/")[1:]
		for i := range keys {
			keys[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(keys[i])
		}
		parent := root
		for _, k := range keys[:len(keys)-1] {
			switch p := parent.(type) {
			case map[string]any:
				parent = p[k]
			case []any:
				i, err := strconv.Atoi(k)
				if err != nil || i >= len(p) {
					return nil, fmt.Errorf("%s: no element %q", op.Path, k)
				}
				parent = p[i]
			default:
				return nil, fmt.Errorf("%s: parent of %q is not a container", op.Path, k)
			}
		}
		last := keys[len(keys)-1]
		m, ok := parent.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s %s: only object members are supported here", op.Op, op.Path)
		}
		switch op.Op {
		case "add", "replace":
			m[last] = v
		case "remove":
			delete(m, last)
		default:
			return nil, fmt.Errorf("op %s not supported", op.Op)
		}
	}
	return json.Marshal(root)
}
