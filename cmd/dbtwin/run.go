package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// Exit codes: the contract CI jobs gate on.
const (
	exitOK         = 0 // success, no regression
	exitRegression = 1 // the run found regressions
	exitError      = 2 // usage error or the harness itself failed
)

// command is one subcommand: its name, a one-line summary for the command
// list, and the function that parses its flags and runs it.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env carries the process's streams into a subcommand.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func commands() []command {
	return []command{
		{"run", "verify a release against every tenant: clone, mask, migrate, replay, compare, report", runRun},
		{"demo", "run the pipeline on built-in fixtures in an embedded sandbox", runDemo},
		{"clone", "make a consistent copy of a database (or dump file) into a target", runClone},
		{"mask", "find PII, mask a sandbox in place, mask workloads (mask scan|apply|workload)", runMask},
		{"replay", "replay a captured workload against a database and record the results", runReplay},
		{"capture", "record a workload through a wire-protocol proxy (capture proxy)", runCapture},
		{"compare", "compare baseline and candidate replay results and write the report", runCompare},
		{"report", "merge shard reports (report merge)", runReport},
		{"migrate", "lint migrations for zero-downtime hazards (migrate lint DIR)", runMigrate},
		{"workload", "convert captured PostgreSQL logs to dbtwin's workload format (workload convert)", runWorkload},
		{"fixtures", "generate the multi-tenant fixture databases (fixtures gen)", runFixtures},
		{"sandbox", "start, list and remove embedded PostgreSQL sandboxes (up|ls|down|gc)", runSandbox},
		{"gc", "remove sandboxes left behind by crashed runs (same as sandbox gc)", runGC},
		{"version", "print dbtwin's version", runVersion},
	}
}

// run is the whole CLI: it returns the process exit code and never calls
// os.Exit, so tests drive it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			args = []string{args[1], "--help"}
		} else {
			usage(stdout)
			if len(args) == 0 {
				return exitError
			}
			return exitOK
		}
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		return exitCode(ctx, e, c.name, err)
	}
	fmt.Fprintf(stderr, "dbtwin: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitError
}

func usage(w io.Writer) {
	fmt.Fprint(w, `dbtwin: a CI test harness for database changes.

Usage:
  dbtwin <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'dbtwin <command> --help' for a command's flags.
Exit codes: 0 success (no regression), 1 regressions found, 2 usage or harness error.
`)
}

// errRegressions is returned by commands that found regressions: exit 1.
var errRegressions = errors.New("regressions found")

// usageError is a mistake in the command line: the message says what was
// wrong, and the command's flags are printed after it.
type usageError struct {
	msg   string
	flags *pflag.FlagSet
}

func (u *usageError) Error() string { return u.msg }

func usagef(fs *pflag.FlagSet, format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...), flags: fs}
}

// errOutputClosed is why a run stops when the reader of its standard output
// or standard error goes away (`dbtwin clone … | head`).
var errOutputClosed = errors.New("the pipe its output went to was closed")

func exitCode(ctx context.Context, e *env, name string, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, pflag.ErrHelp), errors.Is(err, errHandled):
		return exitOK
	case errors.Is(err, errRegressions):
		return exitRegression
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "dbtwin %s: %s\n", name, ue.msg)
		if ue.flags != nil {
			fmt.Fprintf(e.stderr, "\nUsage of dbtwin %s:\n%s", name, ue.flags.FlagUsages())
		}
		return exitError
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		why := "interrupted"
		if errors.Is(context.Cause(ctx), errOutputClosed) {
			why = "stopped: " + errOutputClosed.Error()
		}
		fmt.Fprintf(e.stderr, "dbtwin %s: %s; everything this run started was torn down\n", name, why)
		return exitError
	}
	msg := err.Error()
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	fmt.Fprintf(e.stderr, "dbtwin %s: %s", name, msg)
	return exitError
}

func runVersion(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("version", "", "Print dbtwin's version.", e)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "dbtwin", version())
	return nil
}
