#!/usr/bin/env bash
# `make demo-k8s`: a local-VPC node running containerd + kubelet against a
# real kube-apiserver, aws-node deployed from misc/aws-k8s-cni.yaml with the
# image `make image` builds. It prints the pods with their VPC addresses
# (as `kubectl get pods -A -o wide`), pod→pod and pod→internet traffic, a
# DaemonSet rollout to a new image tag with every pod keeping its address,
# and pod deletion freeing addresses; then removes everything. This is the
# real-node tier's scenario (test/node, TestPrivilegedKubeNode), run verbosely.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "demo-k8s: needs root (network and mount namespaces, containerd)" >&2; exit 1; }
command -v etcd >/dev/null || { echo "demo-k8s: etcd is not installed: apt-get install etcd-server (make deps installs it)" >&2; exit 1; }
export VPC_CNI_PRIVILEGED=1
export VPC_CNI_ETCD="$(command -v etcd)"
export VPC_CNI_KUBE_APISERVER="$(scripts/build-kube-apiserver.sh)"
export VPC_CNI_KUBE_NODE_BIN="$(scripts/build-kube-node.sh)"
go test -count=1 -timeout 15m -v -run 'TestPrivilegedKubeNode$' ./test/node/ |
	grep -v -E '^(=== RUN|=== PAUSE|=== CONT)'
