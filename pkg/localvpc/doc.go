// Package localvpc runs a whole local VPC on one Linux machine. Callers act
// on the VPC; a *Node or *Pod is a handle they pass back and read from:
//
//	VPC (vpc.go)      Start, Close, CleanupStale; vpcsim + data plane netns
//	├─ agent.go       StartAgent(s), StopAgent, RestartAgent, WaitReady (byoagent.go: other binaries)
//	├─ pod.go         AddPod → Pod{IP, Added Timing}, CNIDel, DelPod → Timing, CNIVersion
//	├─ kubenode.go    StartKubeNode: containerd + kubelet on a node
//	├─ inspect.go     ENIs, Locate, SaveLogs; Node.Checkpoint
//	└─ Node (node.go) netns + mount ns (anchor), Exec/Command; cni.go runs plugins inside
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
