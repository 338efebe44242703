// Package localvpc runs a whole local VPC on one Linux machine:
//
//	VPC (vpc.go: Start, Close, CleanupStale)
//	├── vpcsim + data plane       EC2/IMDS in-process; VPC and internet netns
//	├── Node (node.go)            per instance: netns + mount ns, a child agent
//	│   ├── agent (agent.go, byoagent.go)  installer + ipamd, ready on its socket
//	│   ├── CNI (cni.go)          conflist through libcni → Pod (a netns)
//	│   └── KubeNode (kube*.go)   optional containerd + kubelet
//	└── inspect.go                checkpoint, ENIs, logs, Locate(addr)
//
// A node's mount namespace has private /var/run/aws-node, /etc/cni/net.d,
// /opt/cni/bin and /var/log/aws-routed-eni. Pods are wired by the node's
// installed conflist, each plugin executed inside the node's namespaces,
// exactly as a container runtime on that node would.
//
// Everything a VPC creates lives under one run id (namespaces
// "vpcsim-<run>-…", a work directory, child processes marked with
// VPC_CNI_LOCALVPC_RUN=<run> in their environment); Close removes it and
// CleanupStale removes what a crashed run left behind, killing only the
// processes that carry a dead run's marker.
package localvpc
