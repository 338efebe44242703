package awsutils

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// MinHTTPTimeout is the smallest HTTP timeout accepted; upstream raises
// anything lower (or invalid) to this value.
const MinHTTPTimeout = 10 * time.Second

// Config is the typed configuration of the EC2 and IMDS adapters. ipamd's
// main fills it from its parsed configuration (pkg/ipamd/config), then
// NewEC2/NewMetadata apply Defaults and Validate.
type Config struct {
	// Region of the EC2 endpoint. Empty: taken from the IMDS instance-identity
	// document (NewEC2 needs a Metadata then).
	Region string
	// EC2Endpoint overrides the EC2 endpoint URL (upstream's AWS_EC2_ENDPOINT).
	// Empty: the SDK resolves it, honouring AWS_ENDPOINT_URL_EC2.
	EC2Endpoint string
	// IMDSEndpoint overrides the IMDS endpoint. Empty: the SDK resolves it,
	// honouring AWS_EC2_METADATA_SERVICE_ENDPOINT.
	IMDSEndpoint string
	// HTTPTimeout bounds one HTTP request to EC2 (upstream HTTP_TIMEOUT).
	HTTPTimeout time.Duration
	// Version is appended to the SDK user agent as amazon-vpc-cni-k8s/<Version>.
	Version string
	// ClusterName adds the cluster tags to created ENIs and scopes the
	// leaked-ENI query (upstream CLUSTER_NAME).
	ClusterName string
	// AdditionalTags are put on every ENI we create (upstream
	// ADDITIONAL_ENI_TAGS). Keys containing "k8s.amazonaws.com" are dropped.
	AdditionalTags map[string]string
	// IMDSOnly refuses every EC2 call (upstream ENABLE_IMDS_ONLY_MODE).
	IMDSOnly bool
	// Credentials: nil uses the SDK's default chain (environment, IRSA,
	// instance profile, ...); set for tests.
	Credentials *StaticCredentials

	Retry  RetryConfig
	Limits RateLimits
	// DetachPoll paces the wait for a detached ENI to become available.
	DetachPoll Backoff
	// DetachWait is how long a detach usually takes: FreeENI deletes the
	// ENI this long after detaching it (upstream waits a fixed 2 s).
	// Zero: 4 × DetachPoll.Base.
	DetachWait time.Duration
	// LeakedPageSize is MaxResults of the leaked-ENI query (5..1000).
	LeakedPageSize int

	// Observer receives one report per EC2 operation and one per HTTP
	// attempt (nil: none).
	Observer Observer
	// Calls is told when each EC2 operation starts and ends (nil: none).
	Calls CallTracker
	// Now is the clock used for createdAt tags (nil: time.Now).
	Now func() time.Time
}

// StaticCredentials are fixed AWS credentials.
type StaticCredentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
}

// RetryConfig tunes the SDK retryer used for EC2. Throttling errors and 5xx
// responses are retried with exponential backoff and jitter; client errors
// are not.
type RetryConfig struct {
	// MaxAttempts counts the first attempt too (upstream used 10).
	MaxAttempts int
	// Backoff after a 5xx or a connection error.
	Backoff Backoff
	// ThrottleBackoff after a throttling error (slower: the bucket refills
	// at a few tokens per second).
	ThrottleBackoff Backoff
}

// Backoff is an exponential delay: Base doubled each step up to Max, with
// jitter drawn from the upper half of the step.
type Backoff struct {
	Base, Max time.Duration
}

// Defaults fills unset fields with production values.
func (c *Config) Defaults() {
	if c.HTTPTimeout == 0 {
		c.HTTPTimeout = MinHTTPTimeout
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = 10
	}
	if c.Retry.Backoff == (Backoff{}) {
		c.Retry.Backoff = Backoff{Base: 100 * time.Millisecond, Max: 10 * time.Second}
	}
	if c.Retry.ThrottleBackoff == (Backoff{}) {
		c.Retry.ThrottleBackoff = Backoff{Base: 500 * time.Millisecond, Max: 30 * time.Second}
	}
	if c.Limits.Buckets == nil && !c.Limits.Disabled {
		c.Limits.Buckets = DefaultBuckets()
	}
	if c.DetachPoll == (Backoff{}) {
		c.DetachPoll = Backoff{Base: 500 * time.Millisecond, Max: 5 * time.Second}
	}
	if c.DetachWait == 0 {
		c.DetachWait = 4 * c.DetachPoll.Base
	}
	if c.LeakedPageSize == 0 {
		c.LeakedPageSize = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every invalid field, naming it.
func (c *Config) Validate() error {
	var errs []error
	if c.HTTPTimeout < MinHTTPTimeout {
		errs = append(errs, fmt.Errorf("HTTPTimeout %s is below the minimum %s", c.HTTPTimeout, MinHTTPTimeout))
	}
	for name, ep := range map[string]string{"EC2Endpoint": c.EC2Endpoint, "IMDSEndpoint": c.IMDSEndpoint} {
		if ep == "" {
			continue
		}
		if u, err := url.Parse(ep); err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q is not an absolute URL", name, ep))
		}
	}
	if c.Retry.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("Retry.MaxAttempts %d must be at least 1", c.Retry.MaxAttempts))
	}
	for name, b := range map[string]Backoff{"Retry.Backoff": c.Retry.Backoff, "Retry.ThrottleBackoff": c.Retry.ThrottleBackoff, "DetachPoll": c.DetachPoll} {
		if b.Base <= 0 || b.Max < b.Base {
			errs = append(errs, fmt.Errorf("%s %+v needs 0 < Base <= Max", name, b))
		}
	}
	for class, b := range c.Limits.Buckets {
		if b.Size < 1 || b.RefillPerSecond <= 0 {
			errs = append(errs, fmt.Errorf("Limits.Buckets[%s] %+v needs Size >= 1 and RefillPerSecond > 0", class, b))
		}
	}
	if c.LeakedPageSize < 5 || c.LeakedPageSize > 1000 {
		errs = append(errs, fmt.Errorf("LeakedPageSize %d is outside EC2's 5..1000", c.LeakedPageSize))
	}
	if c.Credentials != nil && (c.Credentials.AccessKeyID == "" || c.Credentials.SecretAccessKey == "") {
		errs = append(errs, errors.New("Credentials needs AccessKeyID and SecretAccessKey"))
	}
	return errors.Join(errs...)
}

// FilterAdditionalTags drops keys reserved for the CNI's own tags and returns
// the kept tags and the dropped keys (sorted).
func FilterAdditionalTags(tags map[string]string) (kept map[string]string, dropped []string) {
	kept = make(map[string]string, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if strings.Contains(k, reservedTagMarker) {
			dropped = append(dropped, k)
			continue
		}
		kept[k] = tags[k]
	}
	return kept, dropped
}
