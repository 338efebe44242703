package datastore

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors; every error the package returns wraps one of them (%w)
// with the ENI, CIDR, key or path involved.
var (
	// ErrUnknownPod: Unassign of a key the store does not hold. The text is
	// part of the wire contract: upstream plugins match "datastore: unknown pod".
	ErrUnknownPod = errors.New("datastore: unknown pod")
	// ErrNoAvailableAddress: Assign found nothing to hand out; the concrete
	// error is a *NoAvailableAddressError carrying the reason.
	ErrNoAvailableAddress = errors.New("datastore: no available IP/Prefix addresses")
	ErrUnknownENI         = errors.New("datastore: unknown ENI")
	ErrDuplicateENI       = errors.New("datastore: ENI already in data store")
	ErrENIInUse           = errors.New("datastore: ENI is used and can not be deleted")
	ErrUnknownCIDR        = errors.New("datastore: unknown CIDR")
	ErrDuplicateCIDR      = errors.New("datastore: CIDR already in data store")
	ErrCIDRInUse          = errors.New("datastore: CIDR is used and can not be deleted")
	ErrInvalidCIDR        = errors.New("datastore: invalid CIDR")
	ErrInvalidArgument    = errors.New("datastore: invalid argument")
	// ErrCheckpoint wraps every failure to read, parse or write a checkpoint.
	ErrCheckpoint = errors.New("datastore: checkpoint")
	// ErrUnreadable additionally marks a checkpoint Load could not read or
	// accept (I/O error, bad JSON, version, address, duplicate), as opposed
	// to a failure to write the restored state.
	ErrUnreadable = errors.New("datastore: checkpoint unreadable")
)

// NoAvailableAddressError says why Assign could not hand out an address.
type NoAvailableAddressError struct {
	Mode     Mode
	Total    int // addresses of the active mode on usable ENIs
	Assigned int
	Cooling  int
	// CoolingUntil is the earliest end of a cooldown of an address Assign
	// can hand out (zero when none cools): no address of the active mode
	// frees up sooner.
	CoolingUntil time.Time
	Reason       string
}

func (e *NoAvailableAddressError) Error() string {
	return fmt.Sprintf("%v (%s mode): %s", ErrNoAvailableAddress, e.Mode, e.Reason)
}

// Is makes errors.Is(err, ErrNoAvailableAddress) true.
func (e *NoAvailableAddressError) Is(target error) bool { return target == ErrNoAvailableAddress }
