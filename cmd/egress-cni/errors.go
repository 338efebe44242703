package main

import "github.com/vpc-cni/vpc-cni/pkg/cniplugin"

// CNI error codes of egress-cni, with the meaning the same numbers have in
// aws-cni:
//
//	101 no address: the egress range is exhausted.
//	103 wiring failed: the egress veth, its addresses and routes, or the
//	    SNAT rules could not be set up or removed.
//	105 check failed: CHECK found the egress wiring incomplete; the
//	    message lists every missing piece.
//
// Configuration errors use the spec's 7 (ErrInvalidNetworkConfig), 6 for
// netconf that is not JSON.
const (
	ErrNoAddress   = cniplugin.ErrNoAddress
	ErrWiring      = cniplugin.ErrWiring
	ErrCheckFailed = cniplugin.ErrCheckFailed
)
