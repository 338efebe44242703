package vpcsim_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/conformance"
)

func newEC2(url string) *ec2.Client                 { return conformance.NewEC2(url) }
func newIMDS(url string) *imds.Client               { return conformance.NewIMDS(url) }
func ctx(t *testing.T) context.Context              { return conformance.Ctx(t) }
func wantCode(t *testing.T, err error, code string) { t.Helper(); conformance.WantCode(t, err, code) }
func must[T any](t *testing.T) func(T, error) T     { return conformance.Must[T](t) }
