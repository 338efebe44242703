package localvpc

import (
	"context"
	"fmt"
)

// kubeProxyStandIn is what kube-proxy's rules do to a real node before
// aws-node starts: connection tracking is on in its network namespace. In a
// fresh namespace it is off until ipamd installs its NAT rules; conntrack
// would then pick up the node's open connections mid-stream as new ones,
// SNAT them to a random port (--random-fully) and the far end would reset
// them — ipamd's own connection to the API server among them. The table's
// name is outside everything ipamd owns.
const kubeProxyStandIn = `table ip localvpc-kube-proxy {
	chain prerouting {
		type filter hook prerouting priority 0; policy accept;
		ct state established,related accept
	}
	chain output {
		type filter hook output priority 0; policy accept;
		ct state established,related accept
	}
}
`

// trackConnections turns connection tracking on in n, as kube-proxy would.
func (n *Node) trackConnections(ctx context.Context) error {
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if _, stderr, err := n.Exec(ctx, env, []byte(kubeProxyStandIn), "nft", "-f", "-"); err != nil {
		return fmt.Errorf("node %s: enable connection tracking with nft: %w (%s)", n.ID, err, stderr)
	}
	return nil
}
