package ipamd

import (
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// throttleStepCap bounds one back-off step of a throttled EC2 call.
//
// An ADD waits for the pool at most the plugin's 20 s. With steps doubling
// from 0.5 s to awsutils' 30 s cap, a create throttled five times sleeps
// 4–8 s and then 8–16 s: the account's bucket refills meanwhile, no call
// takes the token, and the waiting ADDs fail although the next try would
// pass (TestThrottledBurstServesEveryADD). Capped here, a throttled call
// is retried every 1.5–3 s once its steps reach the cap (jitter takes at
// most half a step): still a back-off, ten attempts spread over some
// 15 s, after which the pool's own failure back-off (doubling to a
// minute) takes over.
const throttleStepCap = 3 * time.Second

// EC2Retry is the retry policy ipamd asks of its EC2 client (cmd/ipamd):
// awsutils' defaults but for the throttling back-off's cap.
func EC2Retry() awsutils.RetryConfig {
	return awsutils.RetryConfig{ThrottleBackoff: awsutils.Backoff{Base: 500 * time.Millisecond, Max: throttleStepCap}}
}
