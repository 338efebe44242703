#!/usr/bin/env bash
# Prepares what the VM test tier (test/vm) needs: qemu, and Debian's cloud
# kernel with its 802.1Q and veth modules, cached under ~/.cache/vpc-cni
# (outside the work tree) so it is fetched once per machine.
#
# On success it prints one line: the cache directory, which holds
#   vmlinuz            the kernel image
#   modules/           the .ko files the tier loads, uncompressed
#   modules.order      those modules in load order (dependencies first)
#   version            the kernel release
# Any failure exits non-zero with the reason on stderr; the Go test turns
# that into a skip message.
set -euo pipefail
# shellcheck source=lib/apt.sh
. "$(dirname "$0")/lib/apt.sh"

cache="${VPC_CNI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vpc-cni}/vm-kernel"
# Dependencies first: 8021q needs llc, stp, garp and mrp.
mods=(veth llc stp garp mrp 8021q)

say() { echo "vm-kernel: $*" >&2; }

install_pkgs() {
	if [ "$(id -u)" -ne 0 ]; then
		say "missing $*; run as root to install them"
		exit 1
	fi
	say "installing $*"
	export DEBIAN_FRONTEND=noninteractive
	# Another engineer's or test's apt may hold a lock for a while:
	# DPkg::Lock::Timeout waits for dpkg's, apt_update for the lists'.
	local apt=(apt-get -o DPkg::Lock::Timeout=300 -y -qq)
	"${apt[@]}" install --no-install-recommends "$@" >/dev/null 2>&1 ||
		{ apt_update -qq && "${apt[@]}" install --no-install-recommends "$@" >/dev/null; }
}

command -v qemu-system-x86_64 >/dev/null || install_pkgs qemu-system-x86
command -v dpkg-deb >/dev/null || { say "dpkg-deb missing: this script needs a Debian machine"; exit 1; }

if [ -s "$cache/version" ] && [ -f "$cache/vmlinuz" ] && [ -s "$cache/modules.order" ]; then
	echo "$cache"
	exit 0
fi

# Serialise concurrent first runs (several test binaries may start at once).
mkdir -p "$(dirname "$cache")"
exec 9>"$cache.lock"
flock 9
if [ -s "$cache/version" ]; then
	echo "$cache"
	exit 0
fi

work=$(mktemp -d "$cache.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# The meta package names the current versioned image package.
apt-get download linux-image-cloud-amd64 >/dev/null 2>&1 ||
	{ apt_update -qq && apt-get download linux-image-cloud-amd64 >/dev/null; }
image=$(dpkg-deb -f linux-image-cloud-amd64_*.deb Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[0-9][^ (]*\).*/\1/p' | head -n1)
[ -n "$image" ] || { say "cannot find the image package linux-image-cloud-amd64 depends on"; exit 1; }
apt-get download "$image" >/dev/null
dpkg-deb -x "$image"_*.deb root

version=$(ls root/lib/modules | head -n1)
[ -n "$version" ] || { say "no modules in $image"; exit 1; }
mkdir -p out/modules
cp "root/boot/vmlinuz-$version" out/vmlinuz
: >out/modules.order
for m in "${mods[@]}"; do
	f=$(find "root/lib/modules/$version/kernel" -name "$m.ko*" | head -n1)
	[ -n "$f" ] || { say "module $m missing from $image"; exit 1; }
	case "$f" in
	*.ko) cp "$f" "out/modules/$m.ko" ;;
	*.ko.xz) xz -dc "$f" >"out/modules/$m.ko" ;;
	*.ko.zst) zstd -dqc "$f" >"out/modules/$m.ko" ;;
	*.ko.gz) gzip -dc "$f" >"out/modules/$m.ko" ;;
	*) say "unknown module format $f"; exit 1 ;;
	esac
	echo "$m.ko" >>out/modules.order
done
echo "$version" >out/version

rm -rf "$cache"
mv out "$cache"
say "cached kernel $version ($image) in $cache"
echo "$cache"
