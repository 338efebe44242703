// Package localvpc runs a whole local VPC on one Linux machine: vpcsim
// in-process, its data plane (pkg/vpcsim/dataplane), and for every instance a
// node made of its own network namespace and its own mount namespace (with
// private /var/run/aws-node, /etc/cni/net.d, /opt/cni/bin and
// /var/log/aws-routed-eni), in which the aws-node agent (installer + ipamd)
// runs as a child process. Pods are network namespaces wired by the node's
// installed conflist through libcni, with each plugin executed inside the
// node's namespaces, exactly as a container runtime on that node would.
//
// Everything a VPC creates lives under one run id (namespaces
// "vpcsim-<run>-…", a work directory, child processes marked with
// VPC_CNI_LOCALVPC_RUN=<run> in their environment); Close removes it and
// CleanupStale removes what a crashed run left behind, killing only the
// processes that carry a dead run's marker.
package localvpc
