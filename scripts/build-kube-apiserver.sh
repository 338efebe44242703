#!/usr/bin/env bash
# Builds kube-apiserver from the Go module proxy once per machine and caches it
# outside the work tree. Prints the binary's path. Idempotent.
set -euo pipefail

version="${KUBE_VERSION:-1.33.4}"
cache="${VPC_CNI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vpc-cni}"
bin="$cache/kube-apiserver-v$version"

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/build-kube-apiserver.XXXXXX")
trap 'rm -rf "$work"' EXIT

staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
	cloud-provider cluster-bootstrap code-generator component-base component-helpers
	controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
	endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
	kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
	sample-apiserver sample-cli-plugin sample-controller)

{
	echo "module kubeapiserverbuild"
	echo
	echo "go 1.24"
	echo
	echo "require k8s.io/kubernetes v$version"
	echo
	for m in "${staging[@]}"; do
		echo "replace k8s.io/$m => k8s.io/$m v0.${version#1.}"
	done
} >"$work/go.mod"
cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO

echo "building kube-apiserver v$version into $bin (about 9 minutes the first time)" >&2
(
	cd "$work"
	GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
	GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver
)
mv "$bin.tmp" "$bin"
echo "$bin"
