package ipamclient

import (
	"errors"
	"fmt"
	"strconv"
)

// Code is a gRPC status code; the numbers are the protocol's.
type Code uint32

// The gRPC status codes.
const (
	OK                 Code = 0
	Canceled           Code = 1
	Unknown            Code = 2
	InvalidArgument    Code = 3
	DeadlineExceeded   Code = 4
	NotFound           Code = 5
	AlreadyExists      Code = 6
	PermissionDenied   Code = 7
	ResourceExhausted  Code = 8
	FailedPrecondition Code = 9
	Aborted            Code = 10
	OutOfRange         Code = 11
	Unimplemented      Code = 12
	Internal           Code = 13
	Unavailable        Code = 14
	DataLoss           Code = 15
	Unauthenticated    Code = 16
)

var codeNames = [...]string{
	"OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
	"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
	"Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
	"Unauthenticated",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "Code(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// Status is a failed call's gRPC status. Its text is grpc-go's, so logs
// and the CNI errors that quote it read the same as before.
type Status struct {
	Code    Code
	Message string
}

func (s *Status) Error() string {
	return fmt.Sprintf("rpc error: code = %s desc = %s", s.Code, s.Message)
}

func statusf(c Code, format string, a ...any) *Status {
	return &Status{Code: c, Message: fmt.Sprintf(format, a...)}
}

// CodeOf returns err's gRPC code: OK for nil, Unknown for an error that
// carries no status.
func CodeOf(err error) Code {
	if err == nil {
		return OK
	}
	var s *Status
	if errors.As(err, &s) {
		return s.Code
	}
	return Unknown
}

// MessageOf returns the status message of err, or its text when it carries
// no status.
func MessageOf(err error) string {
	if err == nil {
		return ""
	}
	var s *Status
	if errors.As(err, &s) {
		return s.Message
	}
	return err.Error()
}

// httpStatusCode maps the HTTP status of a response without grpc-status,
// e.g. from a proxy or a non-gRPC server, as the gRPC spec says.
func httpStatusCode(h int) Code {
	switch h {
	case 400:
		return Internal
	case 401:
		return Unauthenticated
	case 403:
		return PermissionDenied
	case 404:
		return Unimplemented
	case 429, 502, 503, 504:
		return Unavailable
	}
	return Unknown
}

// decodeGRPCMessage undoes grpc-message's percent-encoding; a malformed
// escape is kept as it came.
func decodeGRPCMessage(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				if out == nil {
					out = append(make([]byte, 0, len(s)), s[:i]...)
				}
				out = append(out, byte(v))
				i += 2
				continue
			}
		}
		if out != nil {
			out = append(out, s[i])
		}
	}
	if out == nil {
		return s
	}
	return string(out)
}
