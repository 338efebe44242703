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
# shellcheck source=lib/kube-module.sh
. "$(dirname "$0")/lib/kube-module.sh"
kube_build_lock "$cache" kube-apiserver
if [ -x "$bin" ]; then # built by the run we waited for
	echo "$bin"
	exit 0
fi
work=$(mktemp -d "$cache/build-kube-apiserver.XXXXXX")
trap 'rm -rf "$work"' EXIT
write_kube_module "$work" kubeapiserverbuild "$version" kube-apiserver

echo "building kube-apiserver v$version into $bin (about 9 minutes the first time)" >&2
(
	cd "$work"
	GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
	GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver
)
mv "$bin.tmp" "$bin"
echo "$bin"
