package resourcecontroller

import (
	"context"
	"crypto/tls"
	"fmt"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrlbuilder "sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/vpc-cni/vpc-cni/pkg/apis/vpcresources/v1beta1"
	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// NewScheme has the kinds the controller reads and writes.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, v1beta1.AddToScheme, eniconfig.AddToScheme,
		func(s *runtime.Scheme) error {
			s.AddKnownTypes(k8s.CNINodeGroupVersion, &k8s.CNINode{}, &k8s.CNINodeList{})
			metav1.AddToGroupVersion(s, k8s.CNINodeGroupVersion)
			return nil
		},
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ManagerOptions configures the process around the controller.
type ManagerOptions struct {
	// WebhookHost and WebhookPort: where the admission webhook listens
	// (default port 9443).
	WebhookHost string
	WebhookPort int
	// WebhookCert serves TLS from memory; otherwise CertDir holds
	// tls.crt and tls.key.
	WebhookCert *tls.Certificate
	CertDir     string
	// MetricsAddr and HealthAddr: "0" disables them.
	MetricsAddr, HealthAddr string
	// LeaderElection runs one active replica (lease
	// cp-vpc-resource-controller in LeaderElectionNamespace).
	LeaderElection          bool
	LeaderElectionNamespace string
	Logger                  logr.Logger
}

// LeaseName is the leader-election lease, EKS's name.
const LeaseName = "cp-vpc-resource-controller"

// NewManager builds a controller-runtime manager for the controller.
func NewManager(rc *rest.Config, o ManagerOptions) (manager.Manager, error) {
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	wo := webhook.Options{Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.CertDir}
	if o.WebhookCert != nil {
		cert := o.WebhookCert
		wo.TLSOpts = []func(*tls.Config){func(c *tls.Config) {
			c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }
		}}
	}
	lease := 30 * time.Second
	renew := 15 * time.Second
	retry := 5 * time.Second
	m, err := manager.New(rc, manager.Options{
		Scheme:                  scheme,
		Logger:                  o.Logger,
		WebhookServer:           webhook.NewServer(wo),
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.HealthAddr,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        LeaseName,
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		LeaseDuration:           &lease,
		RenewDeadline:           &renew,
		RetryPeriod:             &retry,
		// Of ConfigMaps the controller sees only the CNI's own.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {
				Namespaces: map[string]cache.Config{ConfigMapNamespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", ConfigMapName),
			},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("controller manager: %w", err)
	}
	return m, nil
}

// SetupWithManager registers the reconcilers, the webhook and the
// cool-down and GC loops on mgr.
func (c *Controller) SetupWithManager(ctx context.Context, mgr manager.Manager) error {
	c.c = mgr.GetClient()
	c.api = mgr.GetAPIReader()
	c.rec = recorder{c: c.c, log: c.cfg.Log}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, podNodeField, func(o client.Object) []string {
		return []string{o.(*corev1.Pod).Spec.NodeName}
	}); err != nil {
		return fmt.Errorf("indexing pods by node: %w", err)
	}
	// A controller rebuilt in the same process (tests; a new manager after
	// lost leadership) reuses the names.
	skip := true
	err := ctrlbuilder.ControllerManagedBy(mgr).Named("sgp-node").For(&corev1.Node{}).Owns(&k8s.CNINode{}).
		WatchesRawSource(source.Channel(c.kick, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4, SkipNameValidation: &skip}).
		Complete(reconcile.Func(c.reconcileNode))
	if err != nil {
		return fmt.Errorf("node controller: %w", err)
	}
	err = ctrlbuilder.ControllerManagedBy(mgr).Named("sgp-pod").For(&corev1.Pod{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 8, SkipNameValidation: &skip}).
		Complete(reconcile.Func(c.reconcilePod))
	if err != nil {
		return fmt.Errorf("pod controller: %w", err)
	}
	err = ctrlbuilder.ControllerManagedBy(mgr).Named("sgp-configmap").For(&corev1.ConfigMap{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, SkipNameValidation: &skip}).
		Complete(reconcile.Func(c.reconcileConfigMap))
	if err != nil {
		return fmt.Errorf("ConfigMap controller: %w", err)
	}
	mgr.GetWebhookServer().Register(WebhookPath, &webhook.Admission{Handler: podMutator{c: c}})
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return err
	}
	metricSGPEnabled.Set(1)
	for _, r := range []manager.RunnableFunc{c.runCooldown, c.runGC, c.runClusterCleaner} {
		if err := mgr.Add(r); err != nil {
			return err
		}
	}
	return nil
}

var _ admission.Handler = podMutator{}
