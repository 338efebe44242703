package localkube

import (
	"fmt"
	"os"
)

// WriteKubeconfig writes an admin kubeconfig for server (the API server's
// certificate is self-signed and names only 127.0.0.1, hence insecure).
func WriteKubeconfig(path, server, token string) error {
	const tmpl = `apiVersion: v1
kind: Config
clusters:
- name: localvpc
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: aws-node
  user:
    token: %s
contexts:
- name: localvpc
  context: {cluster: localvpc, user: aws-node}
current-context: localvpc
`
	return os.WriteFile(path, fmt.Appendf(nil, tmpl, server, token), 0o600)
}
