package k8s

import (
	"encoding/base64"
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// kubeconfig is the subset of the kubeconfig format ipamd understands when it
// runs outside a pod (tests, kubeenv): the current context's cluster URL, CA
// or insecure flag, and a bearer token or client certificate given inline.
type kubeconfig struct {
	CurrentContext string `json:"current-context"`
	Clusters       []struct {
		Name    string `json:"name"`
		Cluster struct {
			Server                   string `json:"server"`
			CertificateAuthorityData string `json:"certificate-authority-data"`
			InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		Name string `json:"name"`
		User struct {
			Token                 string `json:"token"`
			ClientCertificateData string `json:"client-certificate-data"`
			ClientKeyData         string `json:"client-key-data"`
		} `json:"user"`
	} `json:"users"`
	Contexts []struct {
		Name    string `json:"name"`
		Context struct {
			Cluster string `json:"cluster"`
			User    string `json:"user"`
		} `json:"context"`
	} `json:"contexts"`
}

// loadKubeconfig reads path into a rest.Config (see kubeconfig for what is
// supported); anything else is an error naming the file.
func loadKubeconfig(path string) (*rest.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	var clusterName, userName string
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext {
			clusterName, userName = c.Context.Cluster, c.Context.User
		}
	}
	if clusterName == "" {
		return nil, fmt.Errorf("kubeconfig %s: current-context %q not found", path, kc.CurrentContext)
	}
	cfg := &rest.Config{}
	found := false
	for _, c := range kc.Clusters {
		if c.Name != clusterName {
			continue
		}
		found = true
		cfg.Host = c.Cluster.Server
		cfg.Insecure = c.Cluster.InsecureSkipTLSVerify
		if cfg.CAData, err = decodeData(c.Cluster.CertificateAuthorityData); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: cluster %q certificate-authority-data: %w", path, clusterName, err)
		}
	}
	if !found || cfg.Host == "" {
		return nil, fmt.Errorf("kubeconfig %s: cluster %q has no server", path, clusterName)
	}
	for _, u := range kc.Users {
		if u.Name != userName {
			continue
		}
		cfg.BearerToken = u.User.Token
		if cfg.CertData, err = decodeData(u.User.ClientCertificateData); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: user %q client-certificate-data: %w", path, userName, err)
		}
		if cfg.KeyData, err = decodeData(u.User.ClientKeyData); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: user %q client-key-data: %w", path, userName, err)
		}
	}
	return cfg, nil
}

func decodeData(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s)
}
