package k8s

import (
	"context"
	"errors"
	"io"
	"log/slog"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	toolscache "k8s.io/client-go/tools/cache"
)

// A cache whose list or watch the API server refuses never syncs, and
// Start waits for it: ipamd sits before serving while the reason went only
// to client-go's own stderr logger, not to ipamd's log. The reflector
// retries with back-off (a CRD installed or a role granted later is picked
// up without a restart); each refusal is logged here, naming the resource.

// logWatchErrors sends the list and watch failures of i to log.
func logWatchErrors(i *informer, log *slog.Logger) error {
	resource := i.res.groupResource().String()
	return i.inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, _ *toolscache.Reflector, err error) {
		switch {
		case errors.Is(err, io.EOF):
			// The watch ended normally; the reflector starts another.
		case apierrors.IsResourceExpired(err) || apierrors.IsGone(err) || errors.Is(err, io.ErrUnexpectedEOF):
			log.DebugContext(ctx, "kubernetes watch closed; relisting", "resource", resource, "err", err)
		case apierrors.IsNotFound(err):
			log.WarnContext(ctx, "the API server does not serve "+resource+" (is its CRD installed?); retrying", "resource", resource, "err", err)
		case apierrors.IsForbidden(err):
			log.WarnContext(ctx, "not allowed to list and watch "+resource+" (aws-node's ClusterRole must grant get, list and watch); retrying", "resource", resource, "err", err)
		default:
			log.WarnContext(ctx, "cannot list or watch "+resource+"; retrying", "resource", resource, "err", err)
		}
	})
}
