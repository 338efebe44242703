// Package earlysignal keeps a SIGINT that reaches a command while its
// packages are still initialising. A shell script's background job starts
// with SIGINT ignored, and Go keeps it ignored until main calls
// signal.Notify: on a loaded machine that is a fifth of a second in which
// a SIGINT is dropped and the command goes on to build everything it was
// told to stop building. Importing this package catches SIGINT from its
// init instead; NotifyContext hands a signal caught so early on.
//
// It imports nothing beyond the standard library's signal handling so that
// it is initialised before the heavy packages (Go initialises a package as
// soon as its imports are).
package earlysignal

import (
	"context"
	"os"
	"os/signal"
)

// early holds a SIGINT caught before NotifyContext; nil when SIGINT was not
// ignored at start (its default action then ends the process before main
// has made anything, which is what an early Ctrl-C should do).
var early chan os.Signal

func init() {
	if signal.Ignored(os.Interrupt) {
		early = make(chan os.Signal, 1)
		signal.Notify(early, os.Interrupt)
	}
}

// NotifyContext is signal.NotifyContext, cancelled at once when a SIGINT
// (one of sigs) arrived before it was called.
func NotifyContext(parent context.Context, sigs ...os.Signal) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, sigs...)
	if early == nil {
		return ctx, stop
	}
	// From here on ctx's own registration sees every signal; one that came
	// before it is in early once Stop returns (Stop waits for signals on
	// their way to it).
	signal.Stop(early)
	ctx, cancel := context.WithCancel(ctx)
	select {
	case <-early:
		if wants(sigs, os.Interrupt) {
			cancel()
		}
	default:
	}
	return ctx, func() { cancel(); stop() }
}

func wants(sigs []os.Signal, sig os.Signal) bool {
	if len(sigs) == 0 {
		return true
	}
	for _, s := range sigs {
		if s == sig {
			return true
		}
	}
	return false
}
