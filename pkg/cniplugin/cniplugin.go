// Package cniplugin is what vpc-cni's two CNI plugins, aws-cni and
// egress-cni, share around their commands: the main-thread lock, the entry
// point and the error codes that mean the same in both. It imports only
// the CNI library, so it keeps both plugins' import graphs small.
package cniplugin

import (
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	pkgversion "github.com/vpc-cni/vpc-cni/pkg/version"
)

func init() {
	// Namespace switches apply to OS threads: keep main on one thread, in
	// the node's namespace, for the whole run (an init-time lock binds the
	// main goroutine to the main thread).
	runtime.LockOSThread()
}

// CNI error codes both plugins use with the same meaning. The CNI spec
// reserves 0-99 for itself.
const (
	// ErrNoAddress: no address could be had for the pod.
	ErrNoAddress uint = 101
	// ErrWiring: interfaces, addresses, routes, rules or SNAT rules could
	// not be set up or removed.
	ErrWiring uint = 103
	// ErrCheckFailed: CHECK found the wiring incomplete; the message lists
	// every missing piece.
	ErrCheckFailed uint = 105
)

// Error is a CNI error with code and msg, and err's text as details.
func Error(code uint, msg string, err error) *types.Error {
	details := ""
	if err != nil {
		details = err.Error()
	}
	return types.NewError(code, msg, details)
}

// Main runs the plugin named name (e.g. "aws-cni") with the commands of f
// in every CNI spec version.
func Main(name string, f skel.CNIFuncs) {
	skel.PluginMainFuncs(f, version.All, name+" (vpc-cni) "+pkgversion.Version)
}
