// Command vpc-resource-controller is an open stand-in for the VPC resource
// controller EKS runs for security groups for pods, for self-managed
// clusters and the local VPC: trunk ENIs per SGP node, branch ENIs per
// matching pod, the vpc.amazonaws.com/pod-eni annotation and capacity, and
// the admission webhook (misc/vpc-resource-controller.yaml).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/resourcecontroller"
	"github.com/vpc-cni/vpc-cni/pkg/version"
)

type options struct {
	clusterName, vpcID, region, ec2Endpoint, kubeconfig string
	webhookHost, certDir, webhookConfig, webhookHosts   string
	webhookPort, maxNodeReconcile                       int
	cooldown                                            time.Duration
	leaderElect                                         bool
	leaderNamespace, metricsAddr, healthAddr            string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("vpc-resource-controller", flag.ContinueOnError)
	fs.StringVar(&o.clusterName, "cluster-name", "", "cluster name; tags every ENI (required)")
	fs.StringVar(&o.vpcID, "vpc-id", "", "VPC of the cluster (required)")
	fs.StringVar(&o.region, "aws-region", "", "EC2 region (empty: from instance metadata)")
	fs.StringVar(&o.ec2Endpoint, "ec2-endpoint", "", "EC2 endpoint URL override (e.g. the local VPC's)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig path (empty: in-cluster)")
	fs.StringVar(&o.webhookHost, "webhook-bind-host", "", "address the admission webhook listens on")
	fs.IntVar(&o.webhookPort, "webhook-port", 9443, "port of the admission webhook")
	fs.StringVar(&o.certDir, "webhook-cert-dir", "", "directory with the webhook's tls.crt and tls.key (e.g. from cert-manager); empty: generate one at start")
	fs.StringVar(&o.webhookConfig, "webhook-config-name", "vpc-resource-mutating-webhook", "MutatingWebhookConfiguration whose caBundle is set to a generated certificate's CA")
	fs.StringVar(&o.webhookHosts, "webhook-hosts", "vpc-resource-controller-webhook.kube-system.svc", "comma-separated DNS names/IPs of a generated webhook certificate")
	fs.DurationVar(&o.cooldown, "branch-eni-cooldown", 60*time.Second, "how long a released branch ENI waits before it is deleted, until the amazon-vpc-cni ConfigMap sets branch-eni-cooldown")
	fs.IntVar(&o.maxNodeReconcile, "max-node-reconcile", 10, "deleted nodes whose ENIs are cleaned up at once")
	// On by default: two active replicas would both make branches for the
	// same pod and each delete the other's as leaked (its GC knows only its
	// own). EKS's manifest runs two replicas with --leader-elect.
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "run one active replica (lease "+resourcecontroller.LeaseName+"); false only with exactly one replica")
	fs.StringVar(&o.leaderNamespace, "leader-election-namespace", "kube-system", "namespace of the leader-election lease")
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8443", "metrics address (0: off)")
	fs.StringVar(&o.healthAddr, "health-probe-bind-address", ":61779", "health probe address (0: off)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if o.clusterName == "" {
		errs = append(errs, errors.New("--cluster-name is required"))
	}
	if o.vpcID == "" {
		errs = append(errs, errors.New("--vpc-id is required"))
	}
	if o.maxNodeReconcile < 1 {
		errs = append(errs, fmt.Errorf("--max-node-reconcile %d must be positive", o.maxNodeReconcile))
	}
	if o.cooldown <= 0 {
		errs = append(errs, fmt.Errorf("--branch-eni-cooldown %s must be positive", o.cooldown))
	}
	return o, errors.Join(errs...)
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "vpc-resource-controller:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("vpc-resource-controller stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	rc, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	acfg := awsutils.Config{Region: o.region, EC2Endpoint: o.ec2Endpoint, ClusterName: o.clusterName, Version: version.Version}
	var md *awsutils.Metadata
	if o.region == "" {
		if md, err = awsutils.NewMetadata(acfg); err != nil {
			return err
		}
	}
	ec2, err := awsutils.NewEC2(ctx, acfg, md)
	if err != nil {
		return err
	}
	mo := resourcecontroller.ManagerOptions{
		WebhookHost: o.webhookHost, WebhookPort: o.webhookPort, CertDir: o.certDir,
		MetricsAddr: o.metricsAddr, HealthAddr: o.healthAddr,
		LeaderElection: o.leaderElect, LeaderElectionNamespace: o.leaderNamespace,
		Logger: logr.FromSlogHandler(log.Handler()),
	}
	if o.certDir == "" {
		// Every replica serves the webhook with its own CA; the bundle
		// keeps the CAs of the replicas whose pods still exist.
		owner, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("naming this replica: %w", err)
		}
		cert, caPEM, err := resourcecontroller.GenerateServingCertFor(owner, strings.Split(o.webhookHosts, ","), 10*365*24*time.Hour)
		if err != nil {
			return err
		}
		cs, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return err
		}
		if err := resourcecontroller.InjectCABundle(ctx, cs, o.webhookConfig, caPEM, replicaLive(cs, podNamespace(o.leaderNamespace))); err != nil {
			return err
		}
		mo.WebhookCert = &cert
	}
	mgr, err := resourcecontroller.NewManager(rc, mo)
	if err != nil {
		return err
	}
	c, err := resourcecontroller.New(resourcecontroller.Config{ClusterName: o.clusterName, VPCID: o.vpcID, NodeCleanWorkers: o.maxNodeReconcile, Cooldown: o.cooldown, Log: log}, ec2)
	if err != nil {
		return err
	}
	if err := c.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	if !o.leaderElect {
		log.Warn("leader election is off: run exactly one replica, or two will allocate branch ENIs for the same pods and delete each other's")
	}
	log.Info("vpc-resource-controller starting", "version", version.Version, "cluster", o.clusterName, "vpc", o.vpcID, "leaderElect", o.leaderElect)
	return mgr.Start(ctx)
}

func restConfig(path string) (*rest.Config, error) {
	if path != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		return rc, nil
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster Kubernetes config (or pass --kubeconfig): %w", err)
	}
	return rc, nil
}

// replicaLive reports whether the replica named owner (a pod name) may
// still serve the webhook: only a pod that is certainly gone is not.
func replicaLive(cs kubernetes.Interface, namespace string) func(context.Context, string) bool {
	return func(ctx context.Context, owner string) bool {
		_, err := cs.CoreV1().Pods(namespace).Get(ctx, owner, metav1.GetOptions{})
		return !apierrors.IsNotFound(err)
	}
}

// podNamespace is the namespace this replica runs in: POD_NAMESPACE, else
// the service account's, else def.
func podNamespace(def string) string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	return def
}
