#!/usr/bin/env bash
# Starts etcd + kube-apiserver on loopback for humans (the Go tests use
# pkg/testutil/kubeenv instead). Prints a kubeconfig path; Ctrl-C stops both
# and removes everything.
#   scripts/kube-env.sh            # then: KUBECONFIG=<printed path> kubectl get ns
set -euo pipefail
cd "$(dirname "$0")/.."

etcd_bin="${VPC_CNI_ETCD:-$(command -v etcd || true)}"
[ -x "$etcd_bin" ] || { echo "kube-env: etcd not found (apt-get install etcd-server, or set VPC_CNI_ETCD)" >&2; exit 1; }
kas="${VPC_CNI_KUBE_APISERVER:-$(scripts/build-kube-apiserver.sh)}"

dir=$(mktemp -d /tmp/kube-env.XXXXXX)
pids=()
cleanup() {
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$dir"
	echo "kube-env: stopped" >&2
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)

"$etcd_bin" --name=kube-env --data-dir="$dir/etcd" \
	--listen-client-urls="http://127.0.0.1:$client_port" --advertise-client-urls="http://127.0.0.1:$client_port" \
	--listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
	--initial-cluster="kube-env=http://127.0.0.1:$peer_port" --log-level=warn >"$dir/etcd.log" 2>&1 &
pids+=($!)

openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
token=$(openssl rand -hex 16)
echo "$token,admin,admin,\"system:masters\"" >"$dir/tokens.csv"

"$kas" --etcd-servers="http://127.0.0.1:$client_port" --cert-dir="$dir/certs" \
	--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
	--service-account-issuer=https://kubernetes.default.svc \
	--service-account-key-file="$dir/sa.key" --service-account-signing-key-file="$dir/sa.key" \
	--token-auth-file="$dir/tokens.csv" --authorization-mode=RBAC \
	--service-cluster-ip-range=10.0.0.0/24 --disable-admission-plugins=ServiceAccount \
	--allow-privileged=true >"$dir/kube-apiserver.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 300); do
	if curl -skf -H "Authorization: Bearer $token" "https://127.0.0.1:$api_port/readyz" >/dev/null 2>&1; then
		break
	fi
	sleep 0.1
done
curl -skf -H "Authorization: Bearer $token" "https://127.0.0.1:$api_port/readyz" >/dev/null || {
	echo "kube-env: kube-apiserver not ready; log tail:" >&2; tail -20 "$dir/kube-apiserver.log" >&2; exit 1; }

cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kube-env
  cluster: {server: "https://127.0.0.1:$api_port", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: "$token"}
contexts:
- name: kube-env
  context: {cluster: kube-env, user: admin}
current-context: kube-env
KC
echo "kube-env: ready; logs in $dir; Ctrl-C to stop" >&2
echo "$dir/kubeconfig"
wait
