# Sourced by scripts/build-kube-*.sh. write_kube_module DIR NAME VERSION CMD...
# writes into DIR a Go module that requires k8s.io/kubernetes at VERSION,
# pins every staging module to its published release (k8s.io/kubernetes
# itself refers to them as v0.0.0 with local replaces) and imports the given
# commands, so `go build k8s.io/kubernetes/cmd/<CMD>` resolves from the Go
# module proxy. Every build script uses the same layout, so they share the
# Go build cache.

# kube_build_lock CACHE WHAT: holds CACHE's build lock until the script
# exits, waiting (and saying so) while another build holds it: `make demo`
# beside `make test` on a fresh machine would otherwise both build for
# minutes and race on the same output. The caller checks again for the
# binary once it holds the lock.
kube_build_lock() {
	exec {kube_lock_fd}>"$1/.kube-build.lock"
	if ! flock -n "$kube_lock_fd"; then
		echo "waiting for another kube build in $1 to finish before building $2" >&2
		flock "$kube_lock_fd"
	fi
}

kube_staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
	cloud-provider cluster-bootstrap code-generator component-base component-helpers
	controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
	endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
	kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
	sample-apiserver sample-cli-plugin sample-controller)

write_kube_module() {
	local dir=$1 name=$2 version=$3
	shift 3
	{
		echo "module $name"
		echo
		echo "go 1.24"
		echo
		echo "require k8s.io/kubernetes v$version"
		echo
		local m
		for m in "${kube_staging[@]}"; do
			echo "replace k8s.io/$m => k8s.io/$m v0.${version#1.}"
		done
	} >"$dir/go.mod"
	{
		echo "//go:build tools"
		echo
		echo "package tools"
		echo
		local b
		for b in "$@"; do echo "import _ \"k8s.io/kubernetes/cmd/$b\""; done
	} >"$dir/tools.go"
}
