package vpcsim

import (
	"errors"
	"fmt"
	"net/http"
)

// APIError is an EC2 error: a code from EC2's error catalogue and a message.
// Model operations return it; the protocol layer renders it as AWS error XML.
type APIError struct {
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// HTTPStatus is the status EC2 answers this error with.
func (e *APIError) HTTPStatus() int {
	switch e.Code {
	case "RequestLimitExceeded", "Unavailable", "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case "InternalError", "InternalFailure":
		return http.StatusInternalServerError
	case "UnauthorizedOperation":
		return http.StatusForbidden
	case "AuthFailure": // credentials EC2 cannot validate
		return http.StatusUnauthorized
	case "DryRunOperation":
		return http.StatusPreconditionFailed
	default:
		return http.StatusBadRequest
	}
}

func apiErr(code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the EC2 error code carried by err, or "".
func ErrorCode(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func errMissing(param string) *APIError {
	return apiErr("MissingParameter", "The request must contain the parameter %s", param)
}

func errInvalid(param, value string) *APIError {
	return apiErr("InvalidParameterValue", "Value (%s) for parameter %s is invalid.", value, param)
}

func errENINotFound(id string) *APIError { return eniIDs.notFoundErr([]string{id}) }

func errInstanceNotFound(id string) *APIError { return instanceIDs.notFoundErr([]string{id}) }
