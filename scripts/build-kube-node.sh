#!/usr/bin/env bash
# Builds the node-side Kubernetes binaries the real-node tier needs
# (kubelet, kube-controller-manager for the DaemonSet controller,
# kube-scheduler) from the Go module proxy, once per machine, cached outside
# the work tree. Same module layout as scripts/build-kube-apiserver.sh, so
# the Go build cache it filled is reused. Prints the cache directory holding
# the binaries. Idempotent.
set -euo pipefail

version="${KUBE_VERSION:-1.33.4}"
cache="${VPC_CNI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vpc-cni}"
out="$cache/kube-node-v$version"
bins=(kubelet kube-controller-manager kube-scheduler)

built() {
	local b
	for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done
}
if built; then
	echo "$out"
	exit 0
fi

mkdir -p "$cache"
# shellcheck source=lib/kube-module.sh
. "$(dirname "$0")/lib/kube-module.sh"
kube_build_lock "$cache" "${bins[*]}"
if built; then # by the run we waited for
	echo "$out"
	exit 0
fi
work=$(mktemp -d "$cache/build-kube-node.XXXXXX")
trap 'rm -rf "$work"' EXIT
write_kube_module "$work" kubenodebuild "$version" "${bins[@]}"

echo "building ${bins[*]} v$version into $out (several minutes the first time)" >&2
pkgs=()
for b in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
(
	cd "$work"
	GOFLAGS=-mod=mod go mod tidy -e >/dev/null 2>&1 || true
	mkdir -p "$work/out"
	GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/out/" "${pkgs[@]}"
)
mkdir -p "$out"
for b in "${bins[@]}"; do mv "$work/out/$b" "$out/$b"; done
echo "$out"
