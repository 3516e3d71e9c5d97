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
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
