package main

import (
	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/cniplugin/entry"
)

// CNI error codes of aws-cni. The CNI spec reserves 0-99 for itself; these
// let a runtime, a log search or a person tell the failures apart:
//
//	100 ipamd unreachable: no answer on its socket or no answer in time.
//	101 no address available: ipamd could not assign an address (the
//	    message carries ipamd's reason, e.g. the pool is empty and why).
//	102 ipamd error: ipamd answered with any other failure.
//	103 wiring failed: the pod's interfaces, routes or rules could not be set
//	    up or removed.
//	104 network policy agent failed: it could not be reached or refused.
//	105 check failed: CHECK found the pod's wiring incomplete; the message
//	    lists every missing piece.
//
// Configuration errors use the spec's codes: 6 (ErrDecodingFailure) for
// netconf that is not JSON and 7 (ErrInvalidNetworkConfig) for bad values.
// STATUS reports an unhealthy ipamd with 50 (ErrPluginNotAvailable).
const (
	ErrIpamdUnreachable uint = 100
	ErrNoAddress             = entry.ErrNoAddress
	ErrIpamd            uint = 102
	ErrWiring                = entry.ErrWiring
	ErrNetworkPolicy    uint = 104
	ErrCheckFailed           = entry.ErrCheckFailed
)

func invalidConfig(msg, details string) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, msg, details)
}
