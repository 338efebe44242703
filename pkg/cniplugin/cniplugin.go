// Package cniplugin is the entry point of vpc-cni's CNI plugins that run on
// the CNI library's skel package (egress-cni). The main-thread lock and the
// shared error codes are package entry's, which aws-cni uses without skel.
package cniplugin

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
)

// CNI error codes both plugins use with the same meaning (see entry).
const (
	ErrNoAddress   = entry.ErrNoAddress
	ErrWiring      = entry.ErrWiring
	ErrCheckFailed = entry.ErrCheckFailed
)

// Error is a CNI error with code and msg, and err's text as details.
func Error(code uint, msg string, err error) *types.Error { return entry.Error(code, msg, err) }

// Main runs the plugin named name (e.g. "egress-cni") with the commands of
// f in every CNI spec version.
func Main(name string, f skel.CNIFuncs) {
	skel.PluginMainFuncs(f, version.All, entry.About(name))
}
