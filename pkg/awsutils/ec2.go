package awsutils

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/middleware"
)

// userAgentKey is the product name upstream appends to the SDK user agent.
const userAgentKey = "amazon-vpc-cni-k8s"

// Observer receives EC2 traffic reports. errCode is "" on success, the EC2
// error code on an API error, and "RequestError" or "RequestCanceled" when
// no response was received. Implementations must be safe for concurrent use
// and must not block.
type Observer interface {
	// ObserveEC2Call is told once per operation (one SDK call) with its
	// outcome as the caller saw it: d spans every attempt and back-off,
	// errCode is that of the final attempt. Upstream's series count these.
	ObserveEC2Call(action string, d time.Duration, errCode string)
	// ObserveEC2Attempt is told once per HTTP attempt, retries included,
	// which is what EC2 counts against the account's buckets.
	ObserveEC2Attempt(action string, d time.Duration, errCode string, throttled bool)
	// ObserveUnhandled is told of an EC2 error a method could not undo or
	// get past, under upstream's name for the step (fn); only errors EC2
	// answered with a code are reported.
	ObserveUnhandled(fn, errCode string)
	// ObserveIMDSRead is told of each instance-metadata path read.
	ObserveIMDSRead(d time.Duration, failed bool)
	// ObserveEC2Listing is told once per paginated listing that upstream
	// counts as a whole (its pages are not told to ObserveEC2Call):
	// errCode is that of the page that failed, empty when all came back.
	ObserveEC2Listing(action, errCode string)
	// ObserveAPIError is told of a failure upstream counts in
	// awscni_aws_api_error_count under a name of its own, not an EC2
	// operation's: an instance-metadata getter's, say.
	ObserveAPIError(api, errCode string)
}

// listingKey marks the context of a listing's pages (see listing).
type listingKey struct{}

// listing starts a paginated listing reported once, as upstream counts
// it: its pages reach the Observer only as attempts, and done reports the
// whole with the error of the page that failed (nil: every page came
// back). A listing that fails for another cause reports nothing, as
// upstream's counts nothing then either.
func (e *EC2) listing(ctx context.Context, action string) (context.Context, func(pageErr error)) {
	return context.WithValue(ctx, listingKey{}, true), func(pageErr error) {
		if e.cfg.Observer != nil {
			e.cfg.Observer.ObserveEC2Listing(action, errCode(pageErr))
		}
	}
}

// Upstream's fn names of the steps ObserveUnhandled reports.
const (
	UnhandledAllocENIDelete  = "AllocENIDeleteErr"
	UnhandledFreeENIDelete   = "FreeENIDeleteErr"
	UnhandledFreeENIAttachID = "getENIAttachmentIDFailed"
	UnhandledLeakedENIDelete = "cleanUpLeakedENIDeleteErr"
)

// APIErrIMDSOutOfSync is upstream's api label in awscni_aws_api_error_count
// for an ENI it holds that EC2 answers it does not have.
const APIErrIMDSOutOfSync = "IMDSMetaDataOutOfSync"

// unhandled reports err to the Observer under fn when EC2 answered it.
func (e *EC2) unhandled(fn string, err error) {
	if code := Code(err); code != "" && e.cfg.Observer != nil {
		e.cfg.Observer.ObserveUnhandled(fn, code)
	}
}

// CallStats counts the EC2 traffic of one action.
type CallStats struct {
	// Calls is the number of method-level operations (one per SDK call).
	Calls int
	// Attempts is the number of HTTP requests, retries included.
	Attempts int
	// Errors counts failed attempts; Throttles those that were throttled.
	Errors, Throttles int
}

// Retries is the number of attempts beyond the first of each call.
func (s CallStats) Retries() int { return s.Attempts - s.Calls }

// EC2 is the domain-level EC2 adapter. It is safe for concurrent use.
type EC2 struct {
	api *ec2.Client
	cfg Config
	lim *limiter

	mu    sync.Mutex
	stats map[string]*CallStats
}

// NewEC2 builds the EC2 adapter. When cfg.Region is empty the region is read
// from md's instance-identity document.
func NewEC2(ctx context.Context, cfg Config, md *Metadata) (*EC2, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("awsutils: invalid config: %w", err)
	}
	region := cfg.Region
	if region == "" {
		if md == nil {
			return nil, errors.New("awsutils: Config.Region is empty and no instance metadata client was given to read it from")
		}
		id, err := md.Identity(ctx)
		if err != nil {
			return nil, fmt.Errorf("awsutils: reading the region from instance metadata: %w", err)
		}
		region = id.Region
	}

	opts := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(cfg.HTTPTimeout)),
	}
	if c := cfg.Credentials; c != nil {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("awsutils: loading AWS SDK config: %w", err)
	}

	e := &EC2{cfg: cfg, lim: newLimiter(cfg.Limits), stats: map[string]*CallStats{}}
	e.api = ec2.NewFromConfig(awsCfg, func(o *ec2.Options) {
		o.Retryer = newRetryer(cfg.Retry)
		o.HTTPClient = inMemoryBodies{next: o.HTTPClient} // transport.go
		// Our typed config decides the attempts, not AWS_MAX_ATTEMPTS.
		o.RetryMaxAttempts = 0
		if cfg.EC2Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.EC2Endpoint)
		}
		if cfg.Version != "" {
			o.APIOptions = append(o.APIOptions, awsmiddleware.AddUserAgentKeyValue(userAgentKey, cfg.Version))
		}
		o.APIOptions = append(o.APIOptions, e.addMiddleware)
	})
	return e, nil
}

// Stats returns a snapshot of the per-action counters.
func (e *EC2) Stats() map[string]CallStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]CallStats, len(e.stats))
	for k, v := range e.stats {
		out[k] = *v
	}
	return out
}

func (e *EC2) count(action string, f func(*CallStats)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.stats[action]
	if s == nil {
		s = &CallStats{}
		e.stats[action] = s
	}
	f(s)
}

// newRetryer is the SDK's standard retryer with EC2's retryable set:
// throttling codes, 5xx and connection errors are retried; anything else,
// client errors above all, is returned at once. The SDK's own retry quota
// is off: the client-side limiter already paces us.
func newRetryer(rc RetryConfig) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = rc.MaxAttempts
		o.RateLimiter = ratelimit.None
		o.Backoff = backoffPolicy{normal: rc.Backoff, throttle: rc.ThrottleBackoff}
		o.Retryables = []retry.IsErrorRetryable{
			retry.NoRetryCanceledError{},
			retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if IsThrottle(err) || isServerError(err) {
					return aws.TrueTernary
				}
				if Code(err) != "" {
					return aws.FalseTernary
				}
				return aws.UnknownTernary
			}),
			retry.RetryableConnectionError{},
		}
		o.Throttles = []retry.IsErrorThrottle{retry.IsErrorThrottleFunc(func(err error) aws.Ternary {
			return aws.BoolTernary(IsThrottle(err))
		})}
	})
}

type backoffPolicy struct{ normal, throttle Backoff }

func (p backoffPolicy) BackoffDelay(attempt int, err error) (time.Duration, error) {
	b := p.normal
	if IsThrottle(err) {
		b = p.throttle
	}
	return b.Delay(attempt, rand.Float64()), nil
}

// Delay returns the wait before retry number attempt (1-based): Base doubled
// per attempt, capped at Max, jittered into [d/2, d) with r in [0,1).
func (b Backoff) Delay(attempt int, r float64) time.Duration {
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + time.Duration(r*float64(d/2))
}

type unfilteredKey struct{}

// addMiddleware installs the per-operation guard, counter and call
// tracking (initialize step) and, inside the retry loop, the per-attempt limiter and accounting.
func (e *EC2) addMiddleware(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("vpccni/operation",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if e.cfg.IMDSOnly {
				return middleware.InitializeOutput{}, middleware.Metadata{}, ErrIMDSOnly
			}
			action := awsmiddleware.GetOperationName(ctx)
			e.count(action, func(s *CallStats) { s.Calls++ })
			defer e.beginCall(action, in.Parameters)()
			ctx = middleware.WithStackValue(ctx, unfilteredKey{}, isUnfiltered(in.Parameters))
			start := time.Now()
			out, md, err := next.HandleInitialize(ctx, in)
			if _, paged := ctx.Value(listingKey{}).(bool); e.cfg.Observer != nil && !paged {
				e.cfg.Observer.ObserveEC2Call(action, time.Since(start), errCode(err))
			}
			return out, md, err
		}), middleware.Before)
	if err != nil {
		return err
	}
	return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("vpccni/attempt",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			action := awsmiddleware.GetOperationName(ctx)
			unfiltered, _ := middleware.GetStackValue(ctx, unfilteredKey{}).(bool)
			if err := e.lim.wait(ctx, action, unfiltered); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, err
			}
			start := time.Now()
			out, md, err := next.HandleFinalize(ctx, in)
			e.observe(action, time.Since(start), err)
			return out, md, err
		}), "Retry", middleware.After)
}

// errCode is the Observer's errCode of err.
func errCode(err error) string {
	code := Code(err)
	if err != nil && code == "" {
		code = "RequestError"
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			code = "RequestCanceled"
		}
	}
	return code
}

func (e *EC2) observe(action string, d time.Duration, err error) {
	code := errCode(err)
	throttled := IsThrottle(err)
	e.count(action, func(s *CallStats) {
		s.Attempts++
		if err != nil {
			s.Errors++
		}
		if throttled {
			s.Throttles++
		}
	})
	if e.cfg.Observer != nil {
		e.cfg.Observer.ObserveEC2Attempt(action, d, code, throttled)
	}
}

// isUnfiltered reports whether a describe request falls in EC2's stricter
// "unfiltered and unpaginated" bucket.
func isUnfiltered(params any) bool {
	switch in := params.(type) {
	case *ec2.DescribeNetworkInterfacesInput:
		return len(in.NetworkInterfaceIds) == 0 && len(in.Filters) == 0 && in.MaxResults == nil
	case *ec2.DescribeInstancesInput:
		return len(in.InstanceIds) == 0 && len(in.Filters) == 0 && in.MaxResults == nil
	case *ec2.DescribeSubnetsInput:
		return len(in.SubnetIds) == 0 && len(in.Filters) == 0 && in.MaxResults == nil
	case *ec2.DescribeSecurityGroupsInput:
		return len(in.GroupIds) == 0 && len(in.GroupNames) == 0 && len(in.Filters) == 0 && in.MaxResults == nil
	}
	return false
}

// rollbackContext outlives a cancelled caller so that undoing a half-made
// ENI still happens; it is bounded on its own.
func rollbackContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
}

// single parses the one item a describe by id returned; what names it in
// the error when EC2 returned another number.
func single[T, R any](what string, items []T, parse func(T) (R, error)) (R, error) {
	if len(items) != 1 {
		var zero R
		return zero, fmt.Errorf("describing %s: EC2 returned %d results", what, len(items))
	}
	return parse(items[0])
}
