package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of values that would otherwise overflow or hold the node hostage.
// docs/compatibility.md, "ipamd: configuration and environment variables"
// lists which ones refuse and which fall back.
const (
	// MaxIPCooldown bounds IP_COOLDOWN_PERIOD: a longer cooldown keeps
	// released addresses out of the pool for longer than any pod restart
	// needs, and a value in seconds near 2^63 overflows a time.Duration.
	MaxIPCooldown = 24 * time.Hour
	// MaxHTTPTimeout bounds HTTP_TIMEOUT: an EC2 or IMDS call hanging
	// longer than this stalls the pool manager; larger values fall back.
	MaxHTTPTimeout = 10 * time.Minute
	// MinHTTPTimeout is upstream's floor for HTTP_TIMEOUT.
	MinHTTPTimeout = 10 * time.Second
)

// EC2's tag rules (CreateNetworkInterface refuses a request breaking any
// of them, which would cap the node at its primary ENI).
const (
	MaxTagKeyLen   = 128 // characters
	MaxTagValueLen = 256 // characters
	MaxTagsPerENI  = 50  // all tags of a resource, ours included
	// awsTagPrefix is reserved by AWS in any letter case.
	awsTagPrefix = "aws:"
)

// Tags vpc-cni itself puts on every ENI it creates (pkg/awsutils), counted
// against MaxTagsPerENI. The cluster pair is added only with CLUSTER_NAME.
var (
	ownENITags     = []string{"node.k8s.amazonaws.com/instance_id", "node.k8s.amazonaws.com/createdAt"}
	clusterENITags = []string{"cluster.k8s.amazonaws.com/name", "eks:eni:owner"}
)

// seconds parses a whole number of seconds in [0, limit]. The error says
// what is wrong, without the variable name.
func seconds(v string, limit time.Duration) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) || err == nil && n > int64(limit/time.Second):
		return 0, fmt.Errorf("above the maximum of %d seconds (%s)", int64(limit/time.Second), limit)
	case err != nil:
		return 0, errors.New("not a whole number of seconds")
	case n < 0:
		return 0, errors.New("must not be negative")
	}
	return time.Duration(n) * time.Second, nil
}

// checkTags applies EC2's tag rules to the additional tags together with
// the tags vpc-cni adds, returning every problem joined.
func checkTags(name string, tags map[string]string, clusterName string) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		v := tags[k]
		switch {
		case strings.TrimSpace(k) == "":
			errs = append(errs, fmt.Errorf("%s: tag key %q is empty; EC2 refuses it", name, k))
		case strings.HasPrefix(strings.ToLower(k), awsTagPrefix):
			errs = append(errs, fmt.Errorf("%s: tag key %q starts with %q, which EC2 reserves for AWS", name, k, awsTagPrefix))
		case utf8.RuneCountInString(k) > MaxTagKeyLen:
			errs = append(errs, fmt.Errorf("%s: tag key %.20q… has %d characters, EC2 allows at most %d", name, k, utf8.RuneCountInString(k), MaxTagKeyLen))
		}
		if n := utf8.RuneCountInString(v); n > MaxTagValueLen {
			errs = append(errs, fmt.Errorf("%s: value of tag %.20q has %d characters, EC2 allows at most %d", name, k, n, MaxTagValueLen))
		}
	}
	all := map[string]bool{}
	for k := range tags {
		all[k] = true
	}
	own := ownENITags
	if clusterName != "" {
		own = append(slices.Clone(own), clusterENITags...)
	}
	for _, k := range own {
		all[k] = true
	}
	if len(all) > MaxTagsPerENI {
		errs = append(errs, fmt.Errorf("%s: %d tags plus the %d vpc-cni adds make %d, EC2 allows at most %d per ENI",
			name, len(tags), len(own), len(all), MaxTagsPerENI))
	}
	return errors.Join(errs...)
}
