package awsutils

import (
	"errors"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// EC2 error codes this package and its callers react to.
const (
	CodeENINotFound                 = "InvalidNetworkInterfaceID.NotFound"
	CodeENIInUse                    = "InvalidNetworkInterface.InUse"
	CodeAttachmentNotFound          = "InvalidAttachmentID.NotFound"
	CodeRequestLimitExceeded        = "RequestLimitExceeded"
	CodeUnauthorized                = "UnauthorizedOperation"
	CodeInsufficientCidrBlocks      = "InsufficientCidrBlocks"
	CodeInsufficientFreeAddresses   = "InsufficientFreeAddressesInSubnet"
	CodeAttachmentLimitExceeded     = "AttachmentLimitExceeded"
	CodePrivateIPAddressLimitExceed = "PrivateIpAddressLimitExceeded"
)

// ErrIMDSOnly is returned by every EC2 method when Config.IMDSOnly is set.
var ErrIMDSOnly = errors.New("EC2 calls are disabled (ENABLE_IMDS_ONLY_MODE)")

// throttleCodes are the error codes EC2 (and the SDK's generic list) use for
// "slow down". All are retried with the throttle backoff.
var throttleCodes = map[string]struct{}{
	CodeRequestLimitExceeded: {},
	"Throttling":             {},
	"ThrottlingException":    {},
	"RequestThrottled":       {},
	"EC2ThrottledException":  {},
	"BandwidthLimitExceeded": {},
	"SlowDown":               {},
}

// serverCodes are EC2's codes for its own transient failures.
var serverCodes = map[string]struct{}{
	"InternalError":      {},
	"InternalFailure":    {},
	"ServiceUnavailable": {},
	"Unavailable":        {},
	"RequestTimeout":     {},
}

// Code returns the EC2 error code carried by err, or "" if err is not an
// API error.
func Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// HTTPStatus returns the HTTP status of the response that produced err, or 0.
func HTTPStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// IsNotFound reports whether err says the named resource does not exist.
func IsNotFound(err error) bool {
	return strings.HasSuffix(Code(err), ".NotFound")
}

// IsThrottle reports whether err is EC2 throttling the account.
func IsThrottle(err error) bool {
	_, ok := throttleCodes[Code(err)]
	return ok
}

// IsUnauthorized reports whether the IAM policy lacks the action.
func IsUnauthorized(err error) bool {
	c := Code(err)
	return c == CodeUnauthorized || c == "AuthFailure"
}

// IsInsufficientCapacity reports whether the subnet has no room left for
// the addresses or /28 prefixes asked for.
func IsInsufficientCapacity(err error) bool {
	c := Code(err)
	return c == CodeInsufficientCidrBlocks || c == CodeInsufficientFreeAddresses
}

// IsLimitExceeded reports whether the instance type's ENI or per-ENI address
// limit was reached.
func IsLimitExceeded(err error) bool {
	c := Code(err)
	return c == CodeAttachmentLimitExceeded || c == CodePrivateIPAddressLimitExceed
}

// isServerError reports whether err is a transient EC2-side failure.
func isServerError(err error) bool {
	if _, ok := serverCodes[Code(err)]; ok {
		return true
	}
	s := HTTPStatus(err)
	return s >= 500 && s <= 599
}
