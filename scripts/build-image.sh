#!/usr/bin/env bash
# Builds the aws-node images (main and init) from misc/Dockerfile with buildah,
# without a Docker engine and without any registry pull, and writes them as
# OCI archives a user can load into containerd (`ctr -n k8s.io images import`)
# or push (`skopeo copy oci-archive:... docker://...`).
#
#   scripts/build-image.sh [-t TAG] [-o OUTDIR] [--test-images]
#
# The base layer is Debian bookworm (debootstrap minbase + iptables, nftables,
# ca-certificates), built once per machine and cached under
# ~/.cache/vpc-cni. --test-images also builds the pause and busybox images the
# real-node tier's pods use. Prints one line per archive: "<image> <path>".
# Needs root, buildah and debootstrap (scripts/install-deps.sh --image).
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${IMAGE_TAG:-dev}"
out="${BIN:-bin}/images"
test_images=0
while [ $# -gt 0 ]; do
	case "$1" in
	-t) tag="$2"; shift 2 ;;
	-o) out="$2"; shift 2 ;;
	--test-images) test_images=1; shift ;;
	*) echo "build-image: unknown argument $1 (use -t TAG, -o OUTDIR, --test-images)" >&2; exit 2 ;;
	esac
done
case "$tag" in
*[!A-Za-z0-9_.-]* | "") echo "build-image: tag '$tag' is not a valid image tag" >&2; exit 2 ;;
esac

cache="${VPC_CNI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vpc-cni}"
repo="localhost/vpc-cni"
# buildah's own storage, outside the work tree and outside the machine's
# default /var/lib/containers.
bh=(buildah --root "$cache/buildah/root" --runroot "$cache/buildah/run" --storage-driver vfs)

for tool in buildah debootstrap; do
	command -v "$tool" >/dev/null || { echo "build-image: $tool is not installed (scripts/install-deps.sh --image)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "build-image: buildah with vfs storage and chroot isolation needs root" >&2; exit 1; }
mkdir -p "$cache/buildah" "$out"
# One build at a time per machine: tests and `make image` share the storage.
exec 9>"$cache/buildah/lock"
flock 9

have_image() { "${bh[@]}" inspect --type image "$1" >/dev/null 2>&1; }

# --- base ---------------------------------------------------------------------
# IMAGE_BASE=slim (default): only the Debian packages of iptables and nftables
# and their libraries, unpacked with dpkg-deb (no shell, no apt), plus the CA
# bundle. IMAGE_BASE=debootstrap: a Debian minbase system with those packages
# (has a shell and apt; about 3x larger).
variant="${IMAGE_BASE:-slim}"
base_pkgs="iptables,nftables,ca-certificates"
case "$variant" in
slim | debootstrap) ;;
*) echo "build-image: IMAGE_BASE '$variant' is neither slim nor debootstrap" >&2; exit 2 ;;
esac
base_id="bookworm-$variant-$(echo "$base_pkgs" | sha256sum | cut -c1-8)"
base_tar="$cache/debian-base-$base_id.tar"
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)

slim_rootfs() { # dir
	local dir=$1 debs pkgs
	debs=$(mktemp -d)
	# The packages and every library they need (Depends, recursively).
	# ca-certificates only for its certificate files (its scripts need
	# openssl and debconf, which the bundle made below replaces).
	pkgs="ca-certificates $(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
		--no-replaces --no-enhances iptables nftables | grep -v -E '^[ <]' | sort -u)"
	(cd "$debs" && apt-get -o APT::Sandbox::User=root download $pkgs >/dev/null)
	for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$dir"; done
	rm -rf "$debs"
	# What the packages' maintainer scripts would have set up.
	for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
		ln -sf "${t/iptables/iptables-nft}" "$dir/usr/sbin/$t" 2>/dev/null || true
		ln -sf xtables-nft-multi "$dir/usr/sbin/${t/iptables/iptables-nft}"
	done
	mkdir -p "$dir/etc/ssl/certs" "$dir/tmp" "$dir/run" "$dir/var/run"
	chmod 1777 "$dir/tmp"
	find "$dir/usr/share/ca-certificates" -name '*.crt' -print0 | LC_ALL=C sort -z | xargs -0 cat >"$dir/etc/ssl/certs/ca-certificates.crt"
	printf 'root:x:0:0:root:/root:/sbin/nologin\n' >"$dir/etc/passwd"
	printf 'root:x:0:\n' >"$dir/etc/group"
	# Debian's merged /usr: /bin, /sbin and /lib are links into /usr.
	for l in bin sbin lib lib64; do [ -e "$dir/$l" ] || [ ! -d "$dir/usr/$l" ] || ln -s "usr/$l" "$dir/$l"; done
}

if [ ! -s "$base_tar" ]; then
	echo "build-image: building the $variant base ($base_pkgs), once per machine" >&2
	root=$(mktemp -d "$cache/base.XXXXXX")
	trap 'rm -rf "$root"' EXIT
	mkdir -p "$root/rootfs"
	if [ "$variant" = slim ]; then
		slim_rootfs "$root/rootfs"
	else
		debootstrap --variant=minbase --include="$base_pkgs" bookworm "$root/rootfs" "${mirror:-http://deb.debian.org/debian}" >"$root/log" 2>&1 ||
			{ tail -20 "$root/log" >&2; exit 1; }
	fi
	# What a container never needs: docs, manuals, locales, apt's caches.
	rm -rf "$root"/rootfs/usr/share/{doc,man,info,locale,lintian,linda} \
		"$root"/rootfs/var/cache/apt/* "$root"/rootfs/var/lib/apt/lists/* \
		"$root"/rootfs/var/log/* "$root"/rootfs/tmp/*
	tar -C "$root/rootfs" --numeric-owner -cf "$base_tar.tmp" .
	mv "$base_tar.tmp" "$base_tar"
	rm -rf "$root"
	trap - EXIT
fi
base="$repo/debian-base:$base_id"
if ! have_image "$base"; then
	ctx=$(mktemp -d)
	ln "$base_tar" "$ctx/rootfs.tar" 2>/dev/null || cp "$base_tar" "$ctx/rootfs.tar"
	printf 'FROM scratch\nADD rootfs.tar /\n' >"$ctx/Containerfile"
	"${bh[@]}" bud --isolation chroot --quiet -t "$base" -f "$ctx/Containerfile" "$ctx" >/dev/null
	rm -rf "$ctx"
fi

# --- context: static binaries -----------------------------------------------
ctx="${BIN:-bin}/image-context"
rm -rf "$ctx"
mkdir -p "$ctx/app" "$ctx/init"
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
ldflags="-s -w -X github.com/vpc-cni/vpc-cni/pkg/version.Version=$version"
# Built as `make build` builds them: static (what runs on the host, the
# plugins kubelet execs, must be: the host's libc is not the image's) and
# without grpc's x/net/trace (see the Makefile: half of ipamd's size).
cmds=(./cmd/ipamd ./cmd/aws-vpc-cni ./cmd/max-pods)
plugins=(./cmd/aws-cni)
[ -d cmd/egress-cni ] && plugins+=(./cmd/egress-cni) # ships once its command exists
CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -ldflags "$ldflags" -o "$ctx/app/" "${cmds[@]}"
# The plugins as the Makefile's PLUGIN_ENV builds them: they never collect
# garbage, and the default collector's per-span mark bits cost them page faults.
CGO_ENABLED=0 GOEXPERIMENT=nogreenteagc go build -trimpath -tags grpcnotrace -ldflags "$ldflags" -o "$ctx/app/" "${plugins[@]}"
mv "$ctx/app/ipamd" "$ctx/app/aws-k8s-agent"
ln -s aws-vpc-cni "$ctx/app/grpc-health-probe"
cp misc/10-aws.conflist "$ctx/app/10-aws.conflist"
# Core CNI plugins for the init container (static, for the host), at the
# version go.mod pins, built as their own module from the module proxy.
plugver=$(go list -m -f '{{.Version}}' github.com/containernetworking/plugins)
GOBIN="$(cd "$ctx/init" && pwd)" GOFLAGS= CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
	github.com/containernetworking/plugins/plugins/main/loopback@"$plugver" \
	github.com/containernetworking/plugins/plugins/meta/portmap@"$plugver" \
	github.com/containernetworking/plugins/plugins/meta/bandwidth@"$plugver" \
	github.com/containernetworking/plugins/plugins/meta/tuning@"$plugver" \
	github.com/containernetworking/plugins/plugins/ipam/host-local@"$plugver"
cp "$ctx/app/aws-vpc-cni" "$ctx/init/aws-vpc-cni-init"

# --- images -----------------------------------------------------------------
archive() { # image file
	rm -f "$2"
	"${bh[@]}" push --quiet "$1" "oci-archive:$2:$1" >/dev/null
	echo "$1 $2"
}
# Unchanged binaries, Dockerfile, base and tag: the archives are current.
stamp=$({ (cd "$ctx" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum && find . -type l -printf '%p -> %l\n' | LC_ALL=C sort); cat misc/Dockerfile; echo "$base $tag"; } | sha256sum | cut -c1-16)
main_ar="$out/aws-vpc-cni-$tag.oci.tar" init_ar="$out/aws-vpc-cni-init-$tag.oci.tar"
if [ -s "$main_ar" ] && [ -s "$init_ar" ] && [ "$(cat "$out/.aws-vpc-cni-$tag.stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "$repo/aws-vpc-cni:$tag $main_ar"
	echo "$repo/aws-vpc-cni-init:$tag $init_ar"
else
	"${bh[@]}" bud --isolation chroot --quiet --layers=false --build-arg "BASE=$base" \
		--target init -t "$repo/aws-vpc-cni-init:$tag" -f misc/Dockerfile "$ctx" >/dev/null
	"${bh[@]}" bud --isolation chroot --quiet --layers=false --build-arg "BASE=$base" \
		-t "$repo/aws-vpc-cni:$tag" -f misc/Dockerfile "$ctx" >/dev/null
	archive "$repo/aws-vpc-cni:$tag" "$main_ar"
	archive "$repo/aws-vpc-cni-init:$tag" "$init_ar"
	echo "$stamp" >"$out/.aws-vpc-cni-$tag.stamp"
fi

bb=$(command -v busybox || true)
tstamp=$(cat test/node/pause/main.go ${bb:+"$bb"} | sha256sum | cut -c1-16)
if [ "$test_images" = 1 ] && [ -s "$out/pause-test.oci.tar" ] && [ -s "$out/busybox-test.oci.tar" ] &&
	[ "$(cat "$out/.test-images.stamp" 2>/dev/null)" = "$tstamp" ]; then
	echo "$repo/pause:test $out/pause-test.oci.tar"
	echo "$repo/busybox:test $out/busybox-test.oci.tar"
elif [ "$test_images" = 1 ]; then
	tctx=$(mktemp -d)
	mkdir -p "$tctx/pause" "$tctx/busybox/bin"
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tctx/pause/pause" ./test/node/pause
	printf 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n' >"$tctx/pause/Containerfile"
	"${bh[@]}" bud --isolation chroot --quiet --layers=false -t "$repo/pause:test" -f "$tctx/pause/Containerfile" "$tctx/pause" >/dev/null
	[ -n "$bb" ] || { echo "build-image: busybox-static is not installed" >&2; exit 1; }
	cp "$bb" "$tctx/busybox/bin/busybox"
	for a in sh sleep ping wget nc ip cat ls hostname; do ln -s busybox "$tctx/busybox/bin/$a"; done
	printf 'FROM scratch\nCOPY bin/ /bin/\nCMD ["/bin/sleep", "3600"]\n' >"$tctx/busybox/Containerfile"
	"${bh[@]}" bud --isolation chroot --quiet --layers=false -t "$repo/busybox:test" -f "$tctx/busybox/Containerfile" "$tctx/busybox" >/dev/null
	rm -rf "$tctx"
	archive "$repo/pause:test" "$out/pause-test.oci.tar"
	archive "$repo/busybox:test" "$out/busybox-test.oci.tar"
	echo "$tstamp" >"$out/.test-images.stamp"
fi
