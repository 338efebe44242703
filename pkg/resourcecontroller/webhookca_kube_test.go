package resourcecontroller

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The shipped Deployment runs two replicas behind one Service and each
// generates its own certificate at start: the caBundle must trust every
// live replica, or the API server's calls to the other one fail TLS and,
// with failurePolicy Ignore, its pods are admitted without the pod-eni
// request and run with the node's groups.
func TestKubeCABundleTrustsEveryReplica(t *testing.T) {
	env, admin := kubeAdmin(t)
	ctx := context.Background()
	name := "rc-ca-" + time.Now().Format("150405.000000")
	cfg := WebhookConfiguration(name, "https://127.0.0.1:1"+WebhookPath, nil, map[string]string{"rc-ca-test": name})
	if err := admin.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), cfg) })
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	start := func(owner string) *x509.Certificate {
		cert, caPEM, err := GenerateServingCertFor(owner, []string{"svc.example"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := InjectCABundle(ctx, cs, name, caPEM, func(_ context.Context, o string) bool { return o != "rc-gone" }); err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf
	}
	trusted := func(leaf *x509.Certificate) (bool, int) {
		got, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bundle := got.Webhooks[0].ClientConfig.CABundle
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(bundle) {
			return false, 0
		}
		n := 0
		for rest := bundle; ; n++ {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "svc.example"})
		return err == nil, n
	}
	gone := start("rc-gone") // a replica whose pod no longer exists
	a := start("rc-a")
	b := start("rc-b")
	if ok, _ := trusted(a); !ok {
		t.Errorf("replica a's certificate is not trusted once replica b started")
	}
	if ok, _ := trusted(b); !ok {
		t.Errorf("replica b's certificate is not trusted")
	}
	a2 := start("rc-a") // replica a restarts with a new certificate
	for what, leaf := range map[string]*x509.Certificate{"restarted a": a2, "b": b} {
		if ok, _ := trusted(leaf); !ok {
			t.Errorf("replica %s's certificate is not trusted after a restarted", what)
		}
	}
	if ok, n := trusted(gone); ok || n != 2 {
		t.Errorf("the bundle holds %d CAs (gone replica trusted: %t); want only the live replicas' 2", n, ok)
	}
}
