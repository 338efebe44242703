package k8s

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
)

// An aws-node whose role does not allow ENIConfigs (or a cluster without
// the CRD) waits in Start for a cache that cannot sync. The refusal must
// reach ipamd's own log naming the resource (before, only client-go's
// stderr logger saw it), and granting the role later lets Start finish
// and the ENIConfig be read, without a restart.
func TestCacheRefusalLoggedAndRecovered(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	full, err := client.New(env.Config, client.Options{}) // knows RBAC types
	if err != nil {
		t.Fatal(err)
	}
	const name = "watch-refused"
	createNode(t, admin, name, map[string]string{eniconfig.DefaultKey: name}, nil)
	createENIConfig(t, admin, name, "subnet-0000000f")
	nodesAndPods := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes", "pods"}, Verbs: []string{"get", "list", "watch"}}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{nodesAndPods}}
	for _, o := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}},
		role,
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: "default"}},
		},
	} {
		if err := full.Create(ctx, o); err != nil {
			t.Fatalf("create %T: %v", o, err)
		}
		t.Cleanup(func() { _ = full.Delete(context.Background(), o) })
	}
	sa, err := env.ServiceAccountConfig(ctx, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	c, err := New(Config{
		RESTConfig: sa, NodeName: name, Features: Features{CustomNetworking: true},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	started := make(chan error, 1)
	go func() { started <- c.Start(cctx) }()

	eventually(t, "the refusal in ipamd's log", func() error {
		s := logs.String()
		if strings.Contains(s, "eniconfigs.crd.k8s.amazonaws.com") && strings.Contains(s, "forbidden") {
			return nil
		}
		return errors.New("not logged yet: " + s)
	})
	select {
	case err := <-started:
		t.Fatalf("Start returned while ENIConfigs are refused: %v", err)
	default:
	}

	role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{eniconfig.GroupVersion.Group}, Resources: []string{"eniconfigs"}, Verbs: []string{"get", "list", "watch"}})
	if err := full.Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(60 * time.Second): // the reflector retries at most 30 s apart
		t.Fatal("Start still waiting a minute after ENIConfigs were allowed")
	}
	got, err := c.ENIConfigForNode(ctx)
	if err != nil || got.Spec.Subnet != "subnet-0000000f" {
		t.Fatalf("ENIConfigForNode after the grant: %+v, %v", got, err)
	}
}

// syncBuffer is a bytes.Buffer safe for the informers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
