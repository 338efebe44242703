package vpcsim_test

import (
	"errors"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// Each error code comes with the HTTP status EC2 answers it with, as the
// SDK reads it. Before, AuthFailure (credentials EC2 cannot validate) came
// with 403, the status of UnauthorizedOperation; EC2 answers it 401.
func TestErrorCodesCarryEC2sHTTPStatus(t *testing.T) {
	for code, status := range map[string]int{
		"AuthFailure":           http.StatusUnauthorized,
		"UnauthorizedOperation": http.StatusForbidden,
		"RequestLimitExceeded":  http.StatusServiceUnavailable,
		"InternalError":         http.StatusInternalServerError,
		"InvalidParameterValue": http.StatusBadRequest,
	} {
		sc := simtest.Basic()
		sc.Faults.Errors = []vpcsim.ErrorRule{{Action: "DescribeSubnets", Code: code}}
		env := simtest.Start(t, sc)
		c := newEC2(env.EC2URL)
		_, err := c.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{}, func(o *ec2.Options) { o.RetryMaxAttempts = 1 })
		wantCode(t, err, code)
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != status {
			t.Errorf("%s: %v, want HTTP %d", code, err, status)
		}
	}
}
