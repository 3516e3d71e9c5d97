// Command dbtwin is a CI test harness for database changes: it clones each
// customer database into a throwaway sandbox, masks what is sensitive,
// applies the new release's migrations to a copy, replays the queries
// production ran against old and new side by side and reports every
// difference.
//
// This package only parses flags and wires the library packages together;
// everything a test would want to call lives in those packages.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, stop catching: cleanup is under way, and a
		// second Ctrl-C ends the process at once (servers still die with us
		// through their parent-death signal; `dbtwin gc` removes the files).
		<-ctx.Done()
		stop()
	}()
	// A reader of our output that goes away (`dbtwin clone … 2>&1 | head`)
	// ends the run as Ctrl-C does, cleanup included. By default Go kills a
	// program whose write to a closed pipe on stdout or stderr fails, with
	// SIGPIPE, before anything is torn down; once SIGPIPE is caught, the
	// write returns EPIPE instead, which cancels the run.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, cancel := context.WithCancelCause(ctx)
	code := run(ctx, os.Args[1:], os.Stdin, pipeWatch{os.Stdout, cancel}, pipeWatch{os.Stderr, cancel})
	cancel(nil)
	stop()
	os.Exit(code)
}

// pipeWatch is stdout or stderr: a write that finds the pipe's reader gone
// cancels the run.
type pipeWatch struct {
	*os.File
	cancel context.CancelCauseFunc
}

func (w pipeWatch) Write(b []byte) (int, error) {
	n, err := w.File.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		w.cancel(errOutputClosed)
	}
	return n, err
}
