#!/usr/bin/env bash
# make bench: the figures listed in bench/README.md, measured in a local VPC of network
# namespaces (pkg/localvpc) by bin/vpccni-bench. Prints a table, writes
# bench/results.json and draws bench/pool.svg. About 10 minutes on 2 cores, twice
# that with a compare agent.
#
# Extra flags go through BENCH_FLAGS, e.g. `make bench BENCH_FLAGS=-quick`.
#
# One figure: `make bench BENCH_FLAGS='-figure 4'`.
#
# Side by side: `make bench COMPARE_IPAMD=/path/ipamd COMPARE_PLUGIN=/path/aws-cni`
# measures figures 1-8 and 11-13 for those binaries too, on identical
# nodes, phase by phase after ours, then the side-by-side pool scenario,
# and prints a ratio column (bench/README.md, "Side by side").
# The bench never fetches or builds them; without them it runs ours alone
# and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -ne 0 ]]; then
	echo "make bench: needs root (it creates network and mount namespaces): sudo make bench" >&2
	exit 1
fi
for b in ipamd aws-cni vpccni-bench; do
	if [[ ! -x bin/$b ]]; then
		echo "make bench: bin/$b is missing: run make build" >&2
		exit 1
	fi
done
if [[ ! -x /usr/lib/cni/portmap ]]; then
	echo "make bench: the reference CNI plugins are missing (/usr/lib/cni/portmap): apt-get install containernetworking-plugins" >&2
	exit 1
fi
if ! command -v go >/dev/null; then
	echo "make bench: no go tool in PATH: the datastore figure (9) and the kernel floor (11) will be reported as not measured" >&2
else
	# Figure 11's kernel floor: a trivial binary built static like the plugin.
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o bin/floor ./cmd/vpccni-bench/floor
fi

# Figure 10 (branch-ENI pods) needs a kube-apiserver and etcd, as the
# kubernetes test tier does; without them it is reported as skipped.
if command -v etcd >/dev/null && kas=$(scripts/build-kube-apiserver.sh 2>/dev/null); then
	export VPC_CNI_KUBE_APISERVER="$kas" VPC_CNI_ETCD="$(command -v etcd)"
fi

compare=()
if [[ -n ${COMPARE_IPAMD:-}${COMPARE_PLUGIN:-} ]]; then
	for v in COMPARE_IPAMD COMPARE_PLUGIN; do
		if [[ ! -x ${!v:-} || -d ${!v:-} ]]; then
			echo "make bench: $v=${!v:-} is not an executable file (give both COMPARE_IPAMD and COMPARE_PLUGIN)" >&2
			exit 1
		fi
	done
	compare=(-compare-ipamd "$COMPARE_IPAMD" -compare-plugin "$COMPARE_PLUGIN")
fi

# shellcheck disable=SC2086 # BENCH_FLAGS is a list of flags
exec bin/vpccni-bench -bin bin -repo . -out bench/results.json -svg bench/pool.svg "${compare[@]}" ${BENCH_FLAGS:-}
