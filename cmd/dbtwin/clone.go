package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/harness"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/dbtwin/dbtwin/masking"
)

func runClone(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("clone", "--source DSN|DUMPFILE --target DSN [--jobs N] [--replace]",
		`Make a consistent copy of a database into the target database.

The source is either a live database (a connection string: "postgres://…" or
"host=… dbname=…"), which is only ever read — one exported snapshot, READ ONLY
sessions, a role with CONNECT and SELECT is enough — or a dump file made by
pg_dump (custom, directory, tar or plain SQL format).

The clone is built in a temporary database on the target server and renamed
to the target's name only when complete: a failure or Ctrl-C leaves the
target as it was. A target that exists and is not empty is refused unless
--replace.

The clone's planner statistics are the source's: copied from its pg_stats
where the target role is a superuser (as in every dbtwin sandbox), so the
clone plans queries as production does; gathered by ANALYZE on the clone
for masked columns, for what the source has no statistics for, and on any
other target.

CHECK constraints and foreign keys the source has validated, on tables that
are not masked, are likewise taken from the source where the target role is
a superuser: added without pg_restore's check of every row, which the rows
of one snapshot cannot fail. --validate-constraints runs those checks anyway
(a source written with its keys' triggers off would then fail the clone).

With --mask RULES, sensitive columns are rewritten while the rows stream
(raw values never reach the target), with the key in DBTWIN_MASK_KEY; then
keys and foreign keys are validated over the masked rows and a leak audit
runs. A column the rules do not decide fails the clone, naming it. Start a
rules file with 'dbtwin mask scan'.`, e)
	source := fs.String("source", "", "connection string of the database to copy, or the path of a pg_dump file or directory")
	target := fs.String("target", "", "connection string naming the database to create (or replace) with the clone")
	opts := clone.Options{}
	fs.IntVar(&opts.Jobs, "jobs", runtime.NumCPU(), "parallel copy workers (also pg_restore --jobs)")
	fs.BoolVar(&opts.Replace, "replace", false, "replace the target database if it exists and is not empty")
	fs.BoolVar(&opts.ValidateConstraints, "validate-constraints", false, "check every CHECK constraint and foreign key against the clone's rows, as pg_restore does, instead of taking those the source has validated as valid")
	maskRules := fs.String("mask", "", "masking rules file (YAML); the key comes from $DBTWIN_MASK_KEY")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *source == "":
		return usagef(fs, "--source is required: a connection string or a dump file")
	case *target == "":
		return usagef(fs, "--target is required: a connection string naming the database to create")
	case fs.NArg() > 0:
		return usagef(fs, "unexpected argument %q", fs.Arg(0))
	case opts.Jobs < 1:
		return usagef(fs, "--jobs must be at least 1")
	}
	log, prog, err := withProgress(e, &c)
	if err != nil {
		return usagef(fs, "%v", err)
	}
	opts.Logger = log
	opts.BinDir = c.pgBinDir

	isDSN := looksLikeDSN(*source)
	if !isDSN {
		if _, err := os.Stat(*source); err != nil {
			return usagef(fs, "--source %q is neither a connection string (postgres://… or key=value …) nor an existing dump file", *source)
		}
	}
	opts.Progress = prog
	var res *clone.Result
	var audit *masking.AuditReport
	switch {
	case *maskRules != "" && !isDSN:
		prog.Close()
		return usagef(fs, "--mask needs a live source: a dump is restored by pg_restore, which cannot mask while it loads")
	case *maskRules != "":
		key, kerr := harness.MaskKeyFromEnv()
		rules, rerr := masking.LoadRules(*maskRules)
		if kerr != nil || rerr != nil {
			prog.Close()
			return errors.Join(kerr, rerr)
		}
		res, audit, err = harness.MaskedClone(ctx, *source, *target, rules, key, opts)
	case isDSN:
		res, err = clone.Clone(ctx, *source, *target, opts)
	default:
		res, err = clone.Restore(ctx, *source, *target, opts)
	}
	prog.Close()
	if audit != nil && err != nil {
		audit.WriteText(e.stderr)
	}
	if err != nil {
		return err
	}
	from := *source
	if isDSN {
		from = pgdsn.Describe(*source)
	}
	fmt.Fprintf(e.stdout, "cloned %s into %s: ", from, pgdsn.Describe(*target))
	if len(res.Tables) > 0 {
		fmt.Fprintf(e.stdout, "%d tables, %d rows, %s of COPY data", len(res.Tables), res.Rows, humanBytes(res.Bytes))
	} else {
		fmt.Fprint(e.stdout, "restored from the dump")
	}
	fmt.Fprintf(e.stdout, " in %s", res.Duration.Round(time.Millisecond))
	if s := res.Duration.Seconds(); s > 0 && res.Bytes > 0 {
		fmt.Fprintf(e.stdout, " (%.0f MiB/s)", float64(res.Bytes)/(1<<20)/s)
	}
	fmt.Fprintln(e.stdout)
	var phases []string
	for _, p := range res.Phases {
		phases = append(phases, fmt.Sprintf("%s %s", p.Name, p.Duration.Round(time.Millisecond)))
	}
	fmt.Fprintf(e.stdout, "  phases: %s\n", strings.Join(phases, ", "))
	if audit != nil {
		fmt.Fprintln(e.stdout, "  masking audit:")
		return audit.WriteText(indent{e.stdout})
	}
	return nil
}

// looksLikeDSN tells a connection string from a file path: a URL with the
// postgres scheme, or keyword=value pairs.
func looksLikeDSN(s string) bool {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		return true
	}
	if _, err := os.Stat(s); err == nil {
		return false
	}
	return strings.Contains(s, "=")
}

// indent prefixes every line written through it with four spaces.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	lines := strings.SplitAfter(string(p), "\n")
	for _, l := range lines {
		if l == "" {
			continue
		}
		if _, err := io.WriteString(i.w, "    "+l); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
