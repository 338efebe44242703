package resourcecontroller

import (
	"context"
	"errors"
	"io"
	"net"
	"regexp"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// variable matches the parts of an error's text that change between
// attempts of one cause: numbers (ports, counts, durations) and hex ids.
var variable = regexp.MustCompile(`[0-9a-fA-F]{8,}(-[0-9a-fA-F]+)*|[0-9]+`)

// trunkCause is the stable class of a trunk init failure, what
// tellTrunkFailed tells once: EC2's code when there is one; else
// timeout or network for a failed exchange with EC2, whose text names
// ephemeral ports; else the text with its numbers and ids blanked.
func trunkCause(err error) string {
	if code := awsutils.Code(err); code != "" {
		return "ec2:" + code
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "network"
	}
	return "text:" + variable.ReplaceAllString(err.Error(), "#")
}
