package resourcecontroller

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// GenerateServingCert is GenerateServingCertFor a process with no owner
// name (one replica, tests).
func GenerateServingCert(hosts []string, validity time.Duration) (cert tls.Certificate, caPEM []byte, err error) {
	return GenerateServingCertFor("", hosts, validity)
}

// GenerateServingCertFor makes a private CA and a serving certificate
// signed by it for hosts (DNS names or IP addresses). The API server trusts
// the webhook once caPEM is in the caBundle of its configuration
// (InjectCABundle); the CA key is never stored, so nothing else can be
// signed with it. owner names the replica (its pod name) in the CA's
// subject, so that InjectCABundle can tell replicas' CAs apart.
func GenerateServingCertFor(owner string, hosts []string, validity time.Duration) (cert tls.Certificate, caPEM []byte, err error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, nil, fmt.Errorf("webhook certificate: no host names")
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: caSubject(owner),
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("webhook CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("webhook serving certificate: %w", err)
	}
	cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

// InjectCABundle adds caPEM (a CA of GenerateServingCertFor) to the
// caBundle of every webhook of the named MutatingWebhookConfiguration, so
// the API server trusts the certificate the controller generated at start.
// Every replica behind the webhook Service makes its own CA, so the bundle
// keeps the CAs of the other replicas that are live (nil: all) and drops
// this owner's earlier CA and expired ones (mergeCABundle).
func InjectCABundle(ctx context.Context, cs kubernetes.Interface, configName string, caPEM []byte, live func(ctx context.Context, owner string) bool) error {
	owner, err := caOwner(caPEM)
	if err != nil {
		return err
	}
	api := cs.AdmissionregistrationV1().MutatingWebhookConfigurations()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cfg, err := api.Get(ctx, configName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", configName, err)
		}
		alive := map[string]bool{}
		isLive := func(o string) bool {
			if live == nil {
				return true
			}
			v, ok := alive[o]
			if !ok {
				v = live(ctx, o)
				alive[o] = v
			}
			return v
		}
		now := time.Now()
		for i := range cfg.Webhooks {
			cc := &cfg.Webhooks[i].ClientConfig
			cc.CABundle = mergeCABundle(cc.CABundle, caPEM, owner, now, isLive)
		}
		_, err = api.Update(ctx, cfg, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("setting the caBundle of MutatingWebhookConfiguration %s: %w", configName, err)
	}
	return nil
}
