package config

import (
	"testing"

	"k8s.io/client-go/rest"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// CLUSTER_ENDPOINT as upstream's client takes it: a URL, or a host[:port]
// that client-go dials over HTTPS. A bare host:port used to fail the REST
// config, so ipamd ran without the API server (or refused to start when a
// feature needs it).
func TestClusterEndpointHostPort(t *testing.T) {
	for v, want := range map[string]string{
		"https://ABCD.gr7.us-west-2.eks.amazonaws.com": "https://ABCD.gr7.us-west-2.eks.amazonaws.com",
		"ABCD.gr7.us-west-2.eks.amazonaws.com":         "https://ABCD.gr7.us-west-2.eks.amazonaws.com",
		"10.100.0.1:443":                               "https://10.100.0.1:443",
		"http://127.0.0.1:8080":                        "http://127.0.0.1:8080",
	} {
		c, _, err := Load(env(map[string]string{"CLUSTER_ENDPOINT": v}))
		if err != nil {
			t.Fatalf("CLUSTER_ENDPOINT=%q: %v", v, err)
		}
		rc, err := k8s.RESTConfig(k8s.RESTOptions{Base: &rest.Config{}, ClusterEndpoint: c.ClusterEndpoint})
		if err != nil {
			t.Errorf("CLUSTER_ENDPOINT=%q: REST config: %v", v, err)
			continue
		}
		if rc.Host != want {
			t.Errorf("CLUSTER_ENDPOINT=%q: API server %q, want %q", v, rc.Host, want)
		}
	}
}
