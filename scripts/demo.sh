#!/usr/bin/env bash
# make demo: a two-node local VPC with pods, traffic, a live ENI attach and an
# ipamd restart, then a full cleanup. `make demo` builds bin/ first.
# Extra arguments go to `localvpc demo` (e.g. -pods 20, -save-logs DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: needs root (it creates network and mount namespaces; the machine's own network namespace is never changed)" >&2
	exit 1
fi
if [ ! -x bin/localvpc ] || [ ! -x bin/ipamd ] || [ ! -x bin/aws-cni ]; then
	echo "make demo: building the binaries first" >&2
	make --no-print-directory build >&2
fi
exec bin/localvpc demo -bin bin "$@"
