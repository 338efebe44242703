package ipamd

import (
	"context"
	"log/slog"
	"net"
	"time"
)

// Pauses between attempts of keepServing: upstream restarts its metrics
// and introspection servers with a back-off of 1 s doubling to 60 s.
const (
	serveRetryFirst = time.Second
	serveRetryMax   = time.Minute
)

// keepServing serves what (metrics, introspection) on l until ctx ends.
// A missing listener (the first listen failed: the port is taken, by an
// old aws-node still stopping say) or a failed server is opened again
// with listen after a pause, so that neither ever stops ipamd from serving
// pods. A nil listen leaves it stopped.
func keepServing(ctx context.Context, what string, l net.Listener, listen func() (net.Listener, error),
	serve func(context.Context, net.Listener) error, log *slog.Logger) {
	pause := serveRetryFirst
	for {
		if l == nil {
			if listen == nil {
				return
			}
			var err error
			if l, err = listen(); err != nil {
				log.Warn("cannot listen for "+what+"; trying again", "err", err, "retryIn", pause)
			} else {
				log.Info("serving "+what, "addr", l.Addr().String())
				pause = serveRetryFirst
			}
		}
		if l != nil {
			err := serve(ctx, l) // closes l
			l = nil
			if ctx.Err() != nil {
				return
			}
			log.Warn(what+" server stopped; restarting", "err", err, "retryIn", pause)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, serveRetryMax)
	}
}
