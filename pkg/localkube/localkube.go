// Package localkube runs a real etcd and kube-apiserver on loopback: the
// control plane of the Kubernetes test tier (pkg/testutil/kubeenv wraps it
// for tests) and of `make demo`'s security-groups-for-pods tour.
package localkube

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vpc-cni/vpc-cni/internal/childproc"
)

// Environment variables naming the binaries.
const (
	APIServerEnv = "VPC_CNI_KUBE_APISERVER"
	EtcdEnv      = "VPC_CNI_ETCD"
)

// Env is a running etcd + kube-apiserver pair.
type Env struct {
	// Config authenticates as an admin (group system:masters).
	Config *rest.Config
	// Dir holds data, certificates and logs; removed by Stop.
	Dir string

	adminToken string
	etcd       *process
	apiserver  *process
}

// Binaries returns the two binary paths or an error naming what is missing.
func Binaries() (apiserver, etcd string, err error) {
	apiserver, etcd = os.Getenv(APIServerEnv), os.Getenv(EtcdEnv)
	var missing []string
	if apiserver == "" {
		missing = append(missing, APIServerEnv+" (path to kube-apiserver; build it with scripts/build-kube-apiserver.sh)")
	}
	if etcd == "" {
		missing = append(missing, EtcdEnv+" (path to etcd; apt-get install etcd-server)")
	}
	if len(missing) > 0 {
		return "", "", fmt.Errorf("KUBERNETES TIER SKIPPED: unset %s", strings.Join(missing, " and "))
	}
	return apiserver, etcd, nil
}

// Options adjusts the apiserver for callers that run more of a cluster
// than the apiserver alone.
type Options struct {
	// ServiceCIDR is the Service range; the default, 10.0.0.0/24, suits
	// tests without nodes. A cluster whose nodes live in the local VPC needs
	// a range outside the VPC's CIDRs, as on EKS.
	ServiceCIDR string
	// ServiceAccountAdmission keeps the ServiceAccount admission plugin on.
	// It needs a controller manager creating each namespace's "default"
	// service account, so it is off by default.
	ServiceAccountAdmission bool
	// AdmissionPlugins are enabled on top of the apiserver's defaults
	// (--enable-admission-plugins), e.g. OwnerReferencesPermissionEnforcement,
	// which some distributions turn on and which changes what RBAC a
	// controller setting ownerReferences needs.
	AdmissionPlugins []string
}

// StartProcesses starts etcd and kube-apiserver with the default Options
// and waits until /readyz answers ok. The caller must call Stop.
func StartProcesses(ctx context.Context, apiserverBin, etcdBin string) (*Env, error) {
	return StartProcessesWith(ctx, apiserverBin, etcdBin, Options{})
}

// StartProcessesWith is StartProcesses with opts.
func StartProcessesWith(ctx context.Context, apiserverBin, etcdBin string, opts Options) (_ *Env, err error) {
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = "10.0.0.0/24"
	}
	if _, err := netip.ParsePrefix(opts.ServiceCIDR); err != nil {
		return nil, fmt.Errorf("kubeenv: Options.ServiceCIDR %q: %w", opts.ServiceCIDR, err)
	}
	for _, p := range opts.AdmissionPlugins {
		if p == "" || strings.ContainsAny(p, ", ") {
			return nil, fmt.Errorf("kubeenv: Options.AdmissionPlugins: bad plugin name %q", p)
		}
	}
	dir, err := os.MkdirTemp("", "kubeenv-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	env := &Env{Dir: dir}
	defer func() {
		if err != nil {
			env.Stop()
		}
	}()

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdClient := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	etcdPeer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	env.etcd, err = startProcess(dir, "etcd", etcdBin,
		"--name=kubeenv",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdClient,
		"--advertise-client-urls="+etcdClient,
		"--listen-peer-urls="+etcdPeer,
		"--initial-advertise-peer-urls="+etcdPeer,
		"--initial-cluster=kubeenv="+etcdPeer,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}

	saKey := filepath.Join(dir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		return nil, err
	}
	env.adminToken, err = randomToken()
	if err != nil {
		return nil, err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(env.adminToken+`,kubeenv-admin,kubeenv-admin,"system:masters"`+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	port := ports[2]
	// Without a controller-manager nothing creates the "default" service
	// accounts the ServiceAccount admission plugin insists on.
	disabled := "ServiceAccount"
	if opts.ServiceAccountAdmission {
		disabled = "" // pflag reads an empty list
	}
	args := []string{
		"--etcd-servers=" + etcdClient,
		"--cert-dir=" + filepath.Join(dir, "certs"),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--token-auth-file=" + tokens,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=" + opts.ServiceCIDR,
		"--disable-admission-plugins=" + disabled,
		"--enable-priority-and-fairness=false",
		"--allow-privileged=true", // as in real clusters: aws-node's init container is privileged
	}
	if len(opts.AdmissionPlugins) > 0 {
		args = append(args, "--enable-admission-plugins="+strings.Join(opts.AdmissionPlugins, ","))
	}
	env.apiserver, err = startProcess(dir, "kube-apiserver", apiserverBin, args...)
	if err != nil {
		return nil, err
	}
	env.Config = &rest.Config{
		Host:            "https://127.0.0.1:" + strconv.Itoa(port),
		BearerToken:     env.adminToken,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}, // self-signed cert from --cert-dir
		QPS:             1000,
		Burst:           2000,
	}
	if err := env.waitReady(ctx); err != nil {
		return nil, err
	}
	return env, nil
}

// Stop stops both processes (SIGTERM, then SIGKILL after 10 s) and removes Dir.
// Safe to call more than once.
func (e *Env) Stop() {
	if e.apiserver != nil {
		e.apiserver.stop()
		e.apiserver = nil
	}
	if e.etcd != nil {
		e.etcd.stop()
		e.etcd = nil
	}
	if e.Dir != "" {
		_ = os.RemoveAll(e.Dir) // best effort: a temp dir
		e.Dir = ""
	}
}

// ServiceAccountConfig returns a rest.Config authenticated as the service
// account ns/name, with a token minted by the TokenRequest API. The service
// account must exist; RBAC applies to it as in a real cluster.
func (e *Env) ServiceAccountConfig(ctx context.Context, ns, name string) (*rest.Config, error) {
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		return nil, err
	}
	exp := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("token for service account %s/%s: %w", ns, name, err)
	}
	cfg := rest.CopyConfig(e.Config)
	cfg.BearerToken = tr.Status.Token
	return cfg, nil
}

// Kubeconfig writes a kubeconfig for the admin user to path.
func (e *Env) Kubeconfig(path string) error {
	const tmpl = `apiVersion: v1
kind: Config
clusters:
- name: kubeenv
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: kubeenv
  context: {cluster: kubeenv, user: admin}
current-context: kubeenv
`
	return os.WriteFile(path, fmt.Appendf(nil, tmpl, e.Config.Host, e.adminToken), 0o600)
}

func (e *Env) waitReady(ctx context.Context) error {
	transport, err := rest.TransportFor(e.Config)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: transport, Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		for _, p := range []*process{e.etcd, e.apiserver} {
			if err := p.exited(); err != nil {
				return fmt.Errorf("%s exited before ready: %w\n%s", p.name, err, p.logTail())
			}
		}
		last = probe(ctx, hc, e.Config.Host+"/readyz")
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready: %w (last: %v)\n%s", ctx.Err(), last, e.apiserver.logTail())
		case <-tick.C:
		}
	}
}

func probe(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)) // diagnostic only
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", url, resp.StatusCode, body)
	}
	return nil
}

type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProcess(dir, name, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Killed with the test binary even if it dies without running cleanups,
	// and not when the goroutine that happened to start it ends its thread.
	if err := childproc.Start(cmd); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &process{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return errors.New("exit status 0")
		}
		return p.err
	default:
		return nil
	}
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // it may have just exited
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill() // did not stop on SIGTERM
		<-p.done
	}
}

func (p *process) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return p.name + " log tail:\n" + string(b)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeRSAKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	return nil
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
