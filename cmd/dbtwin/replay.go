package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dbtwin/dbtwin/internal/atomicfile"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/dbtwin/dbtwin/internal/progress"
	"github.com/dbtwin/dbtwin/replay"
)

func runReplay(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("replay", "--workload FILE --target DSN --out results.jsonl [flags]",
		`Replay a captured workload against the target database and write one result
per statement: status, SQLSTATE, columns, row count, an order-aware and a
multiset hash of the rows, the first rows, duration.

Each captured session gets its own connection; statements of a session run
strictly in order and transaction blocks stay intact. In ordered mode (the
default, for comparisons) statements start in captured order across
sessions, so two replays on identical databases give identical results; a
statement blocked by another replayed session's lock does not stall the
rest. Session settings (TimeZone, DateStyle, search_path, ...) are pinned and
a runaway statement is cancelled by statement_timeout.

Ctrl-C stops the replay and leaves a valid results file for what ran.`, e)
	workload := fs.String("workload", "", "captured workload: dbtwin JSONL or a PostgreSQL log (stderr, csvlog, jsonlog)")
	target := fs.String("target", "", "connection string of the database to replay against (a copy, never production)")
	out := fs.String("out", "", "results file to write (JSONL)")
	var wf workloadFlags
	wf.register(fs)
	mode := fs.String("mode", "ordered", "ordered (deterministic, for comparisons) or concurrent")
	maxConns := fs.Int("max-conns", 0, "concurrent mode: sessions at once (0: all)")
	speed := fs.Float64("speed", 0, "concurrent mode: replay at N times the recorded pace (0: as fast as possible)")
	timeout := fs.Duration("statement-timeout", replay.DefaultStatementTimeout, "cancel a statement after this long (recorded as a timeout)")
	sampleRows := fs.Int("sample-rows", replay.DefaultSampleRows, "rows of each result kept for diffs")
	database := fs.StringSlice("database", nil, "replay only sessions captured on these databases")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *workload == "":
		return usagef(fs, "--workload is required")
	case *target == "":
		return usagef(fs, "--target is required")
	case *out == "":
		return usagef(fs, "--out is required")
	case *mode != string(replay.ModeOrdered) && *mode != string(replay.ModeConcurrent):
		return usagef(fs, "--mode %q: want ordered or concurrent", *mode)
	case *speed < 0:
		return usagef(fs, "--speed must not be negative")
	}
	ropts, err := wf.options(fs)
	if err != nil {
		return err
	}
	ropts.Filter = replay.Filter{Databases: *database}
	log, err := c.logger(e)
	if err != nil {
		return usagef(fs, "%v", err)
	}
	r, err := replay.Open(ctx, *workload, ropts)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := atomicfile.Create(*out)
	if err != nil {
		return err
	}
	defer f.Abort()
	rw, err := replay.NewResultsWriter(f, replay.ResultsHeader{Mode: replay.Mode(*mode), SampleRows: *sampleRows})
	if err != nil {
		return err
	}
	counter := progress.NewCounter(e.stderr, progress.IsTerminal(e.stderr), log, "replay")
	log.Info("replay", "workload", *workload, "target", pgdsn.Describe(*target), "mode", *mode)
	stats, err := replay.Replay(ctx, r, *target, replay.EngineOptions{
		Mode: replay.Mode(*mode), MaxConns: *maxConns, Speed: *speed,
		StatementTimeout: *timeout, SampleRows: *sampleRows,
		Progress: counter.Update, Logger: log,
	}, rw)
	counter.Close()
	// Whatever ran is kept, also after Ctrl-C: every line written is a
	// complete result.
	if ferr := rw.Flush(); ferr != nil && err == nil {
		err = ferr
	}
	if rerr := r.Err(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil && ctx.Err() == nil {
		return err
	}
	if cerr := f.Commit(); cerr != nil {
		return cerr
	}
	fmt.Fprintf(e.stdout, "replayed %d statements in %d sessions in %s: %d ok, %d errors, %d timeouts, %d connection losses, %d skipped, %d lock waits; results in %s\n",
		stats.Statements, stats.Sessions, stats.Elapsed.Round(time.Millisecond), stats.OK, stats.Errors, stats.Timeouts, stats.ConnLost, stats.Skipped, stats.LockWaits, *out)
	if st := r.Stats(); st.WarningCount > 0 {
		fmt.Fprintf(e.stderr, "%d workload lines were skipped with warnings (run 'dbtwin workload convert' for the list)\n", st.WarningCount)
	}
	return err // a cancelled context: the run was interrupted, results kept
}

func runCapture(ctx context.Context, e *env, args []string) error {
	if err := onlySubcommand(e, args, "capture", "proxy", "--listen 127.0.0.1:PORT --upstream DSN --out FILE", "Capture a workload."); err != nil {
		return err
	}
	var c common
	fs := newFlagSet("capture proxy", "--listen 127.0.0.1:PORT --upstream DSN --out workload.jsonl",
		`Run a PostgreSQL wire-protocol proxy that forwards everything to the
upstream server and records every statement — with its parameters, types
and formats, transaction boundaries and timings — as a dbtwin JSONL
workload. Point an application's test suite or a staging deployment at the
listen address. Ctrl-C stops it and flushes the file.`, e)
	listen := fs.String("listen", "127.0.0.1:6432", "loopback address to listen on")
	upstream := fs.String("upstream", "", "connection string of the server to forward to")
	out := fs.String("out", "", "workload file to write (JSONL)")
	c.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *upstream == "" || *out == "" {
		return usagef(fs, "--upstream and --out are required")
	}
	log, err := c.logger(e)
	if err != nil {
		return usagef(fs, "%v", err)
	}
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("create workload file: %w", err)
	}
	defer f.Close()
	p := &replay.Proxy{Listen: *listen, Upstream: *upstream, Out: f, Logger: log}
	fmt.Fprintf(e.stderr, "capturing: connect to %s (forwarded to %s); Ctrl-C to stop\n", *listen, pgdsn.Describe(*upstream))
	err = p.ListenAndServe(ctx)
	st := p.Stats()
	fmt.Fprintf(e.stdout, "captured %d statements in %d sessions into %s\n", st.Statements, st.Sessions, *out)
	if ctx.Err() != nil {
		return nil // Ctrl-C is how a capture ends
	}
	return err
}
