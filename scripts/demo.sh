#!/usr/bin/env bash
# make demo: a two-node local VPC with pods, traffic, a live ENI attach and an
# ipamd restart, then a full cleanup; then the IPv6 variant (localvpc demo
# -ipv6), then security groups for pods against a real kube-apiserver
# (localvpc demo -sgp). `make demo` builds bin/ first.
# Extra arguments go to `localvpc demo` (e.g. -pods 20, -save-logs DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: needs root (it creates network and mount namespaces; the machine's own network namespace is never changed)" >&2
	exit 1
fi
# The SGP tour needs etcd: said now, not after the first two tours.
command -v etcd >/dev/null || {
	echo "make demo: etcd is not installed: apt-get install etcd-server (make deps installs it)" >&2
	exit 1
}
if [ ! -x bin/localvpc ] || [ ! -x bin/ipamd ] || [ ! -x bin/aws-cni ]; then
	echo "make demo: building the binaries first" >&2
	make --no-print-directory build >&2
fi
bin/localvpc demo -bin bin "$@"
# Then the IPv6 cluster tour (about 10 s): IPv6 pods, IPv6 internet, IPv4
# internet through egress-cni.
bin/localvpc demo -ipv6 -bin bin "$@"
# Then security groups for pods: kube-apiserver is built once per machine
# into ~/.cache/vpc-cni (about 10 min the first time), etcd comes from
# scripts/install-deps.sh.
kas=$(scripts/build-kube-apiserver.sh)
exec bin/localvpc demo -sgp -bin bin -kube-apiserver "$kas" -etcd "$(command -v etcd)" "$@"
