package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/vpc-cni/vpc-cni/pkg/localkube"
	"github.com/vpc-cni/vpc-cni/pkg/localkube/forward"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
)

// kubeAPI is a real etcd + kube-apiserver reachable from the nodes, for
// ipamd's Kubernetes caches in figure 7.
type kubeAPI struct {
	env        *localkube.Env
	fwd        interface{ Close() error }
	kubeconfig string
}

// startKube starts etcd and kube-apiserver (pkg/localkube), forwards them
// into the VPC and registers node n; nil without VPC_CNI_KUBE_APISERVER
// and VPC_CNI_ETCD.
func startKube(ctx context.Context, v *localvpc.VPC, n *localvpc.Node) (_ *kubeAPI, err error) {
	apiserver, etcd, err := localkube.Binaries()
	if err != nil {
		return nil, nil //nolint:nilerr // no API server configured: measured without, and the figure says so
	}
	env, err := localkube.StartProcesses(ctx, apiserver, etcd)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	k := &kubeAPI{env: env}
	defer func() {
		if err != nil {
			k.stop()
		}
	}()
	if k.fwd, err = forward.InVPC(v.DP.VPCNS(), strings.TrimPrefix(env.Config.Host, "https://")); err != nil {
		return nil, err
	}
	k.kubeconfig = filepath.Join(env.Dir, "node-kubeconfig")
	if err := localkube.WriteKubeconfig(k.kubeconfig, "https://"+forward.VPCAddr.String(), env.Config.BearerToken); err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	inst, err := v.Sim.Instance(n.ID)
	if err != nil {
		return nil, err
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
			"topology.kubernetes.io/zone": inst.AZ, "node.kubernetes.io/instance-type": inst.Type, "kubernetes.io/os": "linux",
		}},
		Spec: corev1.NodeSpec{ProviderID: fmt.Sprintf("aws:///%s/%s", inst.AZ, inst.ID)},
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("registering node %s: %w", n.Name, err)
	}
	return k, nil
}

// agentEnv is what ipamd needs to use the API server as node n.
func (k *kubeAPI) agentEnv(n *localvpc.Node) []string {
	if k == nil {
		return nil
	}
	return []string{"MY_NODE_NAME=" + n.Name, "MY_POD_NAME=aws-node-" + n.Name, "KUBECONFIG=" + k.kubeconfig}
}

func (k *kubeAPI) stop() {
	if k == nil {
		return
	}
	if k.fwd != nil {
		_ = k.fwd.Close() // a listener in the VPC namespace, removed with it
	}
	k.env.Stop()
}
