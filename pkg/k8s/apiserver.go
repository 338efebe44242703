package k8s

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// APIServerWait holds the timings of WaitForAPIServer (docs/compatibility.md,
// "API server at start").
type APIServerWait struct {
	// RequestTimeout bounds each version request. Default 5 s.
	RequestTimeout time.Duration
	// RequiredInterval is the retry period when a feature needs the API
	// server; there is no deadline other than ctx. Default 2 s.
	RequiredInterval time.Duration
	// OptionalInterval and OptionalTimeout bound the attempt when no feature
	// needs the API server. Defaults 5 s and 30 s.
	OptionalInterval time.Duration
	OptionalTimeout  time.Duration
}

func (w *APIServerWait) defaults() {
	if w.RequestTimeout == 0 {
		w.RequestTimeout = 5 * time.Second
	}
	if w.RequiredInterval == 0 {
		w.RequiredInterval = 2 * time.Second
	}
	if w.OptionalInterval == 0 {
		w.OptionalInterval = 5 * time.Second
	}
	if w.OptionalTimeout == 0 {
		w.OptionalTimeout = 30 * time.Second
	}
}

// WaitForAPIServer waits until the API server answers a version request.
// When an enabled feature (custom networking, pod ENI, pod IP annotation)
// needs it, it retries until ctx ends; otherwise it gives up after
// OptionalTimeout with ErrAPIServerUnavailable and ipamd runs without it.
// Authentication and authorization failures end the wait at once: retrying
// cannot fix credentials.
func (c *Client) WaitForAPIServer(ctx context.Context) error {
	w := c.cfg.APIServerWait
	interval := w.OptionalInterval
	if c.cfg.Features.needAPIServer() {
		interval = w.RequiredInterval
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.OptionalTimeout)
		defer cancel()
	}
	host := c.cfg.RESTConfig.Host
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for attempt := 1; ; attempt++ {
		v, err := c.api.serverVersion(ctx, w.RequestTimeout)
		if err == nil {
			c.log.Info("kubernetes API server reachable", "version", v.GitVersion, "host", host)
			return nil
		}
		if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
			return fmt.Errorf("kubernetes API server %s refused our credentials: %w", host, err)
		}
		c.log.Debug("kubernetes API server not reachable yet", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("%w at %s after %d attempts: %w", ErrAPIServerUnavailable, host, attempt, err), context.Cause(ctx))
		case <-tick.C:
		}
	}
}
