package localkube

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// ForwardAddr is where the forwarder listens in the VPC namespace: beside the EC2
// endpoint, which every node already routes to.
var ForwardAddr = netip.AddrPortFrom(dataplane.EC2Addr.Addr(), 6443)

// Forward listens on ForwardAddr inside the VPC namespace vpcNS and relays every
// connection to target, dialled from this process (the root namespace's
// loopback). TLS passes through untouched. Close the result to stop.
func Forward(vpcNS, target string) (io.Closer, error) {
	l, err := dataplane.ListenIn(vpcNS, ForwardAddr)
	if err != nil {
		return nil, fmt.Errorf("API server forwarder: %w", err)
	}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go relay(in, target)
		}
	}()
	return l, nil
}

func relay(in net.Conn, target string) {
	defer in.Close()
	out, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(out, in)
	go cp(in, out)
	<-done
	<-done
}

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
