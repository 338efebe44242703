// Package cniplugin is the entry point of egress-cni. It runs on package
// entry's dispatcher, as aws-cni does, not on the CNI library's skel: skel's
// validation compiles regular expressions at start-up, and a plugin starts
// once per pod event (bench/README.md, "Where a churn pair's CPU goes").
package cniplugin

import (
	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
)

// CNI error codes both plugins use with the same meaning (see entry).
const (
	ErrNoAddress   = entry.ErrNoAddress
	ErrWiring      = entry.ErrWiring
	ErrCheckFailed = entry.ErrCheckFailed
)

// Args is one command's input from the runtime.
type Args = entry.Args

// Funcs are a plugin's commands; a nil one succeeds without doing anything.
type Funcs = entry.Funcs

// Error is a CNI error with code and msg, and err's text as details.
func Error(code uint, msg string, err error) *types.Error { return entry.Error(code, msg, err) }

// Main runs the plugin named name (e.g. "egress-cni") with the commands of
// f in every CNI spec version.
func Main(name string, f Funcs) { entry.Main(name, f) }
