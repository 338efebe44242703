package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeadmin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestProcessKubeconfigCustomNetworkingWithPodENI (Kubernetes tier): ipamd
// outside a pod reaches a real API server through KUBECONFIG, creates its
// pod ENI in the ENIConfig's subnet, declares CustomNetworking=<ENIConfig>
// and SecurityGroupsForPods on its CNINode, and /v1/eni-configs names the
// ENIConfig.
func TestProcessKubeconfigCustomNetworkingWithPodENI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	kenv := kubeenv.Start(t) // skips without the Kubernetes tier
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := kubeadmin.Client(ctx, t, kenv, filepath.Join("..", ".."))
	const node = "node-1"
	objs := []client.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{eniconfig.DefaultKey: "pods-a"}}},
		&eniconfig.ENIConfig{ObjectMeta: metav1.ObjectMeta{Name: "pods-a"},
			Spec: eniconfig.Spec{Subnet: simtest.CustomSubnetAID, SecurityGroups: []string{simtest.SecurityGroup2ID}}},
		&k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: node}},
	}
	var err error
	for _, o := range objs {
		// The CRDs may need a moment to be served after they are established.
		for err = admin.Create(ctx, o); err != nil && ctx.Err() == nil; err = admin.Create(ctx, o) {
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
	}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kenv.Kubeconfig(kc); err != nil {
		t.Fatal(err)
	}

	env := simtest.Start(t, simtest.Basic())
	d := simDaemon(t, env, "KUBECONFIG="+kc, "MY_NODE_NAME="+node, "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true",
		"ENABLE_POD_ENI=true", "WARM_IP_TARGET=3", "DISABLE_METRICS=true", "INTROSPECTION_BIND_ADDRESS=127.0.0.1:0")
	d.start()
	intro, err := d.logAttr("serving introspection", "addr", workingWait)
	if err != nil {
		t.Fatal(err)
	}

	var features []k8s.CNINodeFeature
	ok := false
	for deadline := time.Now().Add(workingWait); !ok && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		cn := &k8s.CNINode{}
		if err := admin.Get(ctx, client.ObjectKey{Name: node}, cn); err != nil {
			t.Fatal(err)
		}
		features = cn.Spec.Features
		have := map[string]string{}
		for _, f := range features {
			have[f.Name] = f.Value
		}
		v, sgpp := have["SecurityGroupsForPods"]
		ok = have["CustomNetworking"] == "pods-a" && sgpp && v == ""
	}
	if !ok {
		t.Fatalf("CNINode features %+v, want CustomNetworking=pods-a and SecurityGroupsForPods\n%s", features, d.log(d.runs))
	}

	resp, err := http.Get("http://" + intro + "/v1/eni-configs")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != `"pods-a"` {
		t.Errorf("/v1/eni-configs: %d %s %v", resp.StatusCode, body, err)
	}

	inPodSubnet := func() error {
		inst, err := env.Sim.Instance(simtest.InstanceID)
		if err != nil {
			return err
		}
		for _, e := range inst.ENIs[1:] {
			if e.SubnetID == simtest.CustomSubnetAID && len(e.SecondaryIPs) > 0 {
				return nil
			}
		}
		return errors.New("no ENI with addresses in the ENIConfig's subnet")
	}
	for deadline := time.Now().Add(workingWait); inPodSubnet() != nil && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if err := inPodSubnet(); err != nil {
		t.Error(err)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}
