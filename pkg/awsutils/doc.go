// Package awsutils is the only package of vpc-cni that imports the AWS SDK
// service clients. It wraps EC2 and the instance metadata service (IMDS) in
// domain-level methods that take and return plain structs and net/netip
// values, so the rest of the daemon never sees SDK types.
//
//   - EC2 (NewEC2): one SDK call, or one paginated series, per method. Every
//     HTTP attempt first waits for a token of a client-side bucket shaped
//     like EC2's per-account buckets (RateLimits), then is reported to the
//     Observer and counted in Stats; each operation is reported once more
//     with its final outcome, retries included. The SDK's standard retryer retries
//     throttling, 5xx and connection errors with exponential backoff and
//     jitter, never client errors, for at most Retry.MaxAttempts, bounded by
//     the caller's context. Each operation, retries included, is shown to
//     the CallTracker while it runs.
//   - Metadata (NewMetadata): IMDSv2 reads of the identity document and of
//     the per-MAC network tree. IMDS lags EC2; callers that need the truth
//     about ENIs and addresses ask EC2.
//   - Pure helpers for the decisions around those calls: ENITags,
//     SubnetEligible / SubnetExcluded, DecideLeaked, FreeDeviceIndex,
//     TrunkingCompatible (a static table: EC2 does not expose it) and the
//     error classifiers (Code, IsNotFound, IsThrottle, ...).
//
// Endpoints: Config.EC2Endpoint (upstream's AWS_EC2_ENDPOINT, which ipamd's
// config reads and, unlike upstream, applies to the EC2 client) wins over
// the SDK's AWS_ENDPOINT_URL_EC2; Config.IMDSEndpoint wins over
// AWS_EC2_METADATA_SERVICE_ENDPOINT.
package awsutils
