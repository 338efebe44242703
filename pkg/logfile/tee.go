package logfile

import (
	"context"
	"log/slog"
)

// WithErrorsTo returns a handler writing every record to h and records at
// ErrorLevel or above also to errs. A daemon logging to a file uses it so
// the reason it stops also reaches its container's output (what `kubectl
// logs` shows during a crash loop), not only the file on the host.
func WithErrorsTo(h, errs slog.Handler) slog.Handler {
	return tee{all: h, errs: errs}
}

type tee struct{ all, errs slog.Handler }

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	return t.all.Enabled(ctx, l) || l >= slog.LevelError && t.errs.Enabled(ctx, l)
}

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.all.Enabled(ctx, r.Level) {
		err = t.all.Handle(ctx, r)
	}
	if r.Level >= slog.LevelError && t.errs.Enabled(ctx, r.Level) {
		if e := t.errs.Handle(ctx, r.Clone()); err == nil {
			err = e
		}
	}
	return err
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	return tee{all: t.all.WithAttrs(as), errs: t.errs.WithAttrs(as)}
}

func (t tee) WithGroup(name string) slog.Handler {
	return tee{all: t.all.WithGroup(name), errs: t.errs.WithGroup(name)}
}
