package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/dbtwin/dbtwin/migrate"
	"github.com/dbtwin/dbtwin/replay"
)

func runMigrate(ctx context.Context, e *env, args []string) error {
	if err := onlySubcommand(e, args, "migrate", "lint", "DIR [flags]", "Work with migrations."); err != nil {
		return err
	}
	var c common
	fs := newFlagSet("migrate lint", "DIR [--workload FILE] [--json] [--fail-on error|warning]",
		`Check a migration directory (golang-migrate, goose, Flyway, dbmate, Atlas or
plain .sql files, detected) for zero-downtime hazards with the real
PostgreSQL parser: each finding has a rule id, severity, file:line, the lock
the statement takes and the expand/contract way to do it safely.

With --workload (a captured workload or PostgreSQL log), DROP and RENAME of
columns and tables are cross-checked against what the old application still
queries, naming the queries that would break.

Suppress a finding with a '-- dbtwin:ignore DT003' comment on the line before
the statement. Exit code 1 when a finding reaches --fail-on.`, e)
	format := fs.String("format", "auto", "migration format: auto, golang-migrate, goose, flyway, dbmate, atlas, plain")
	workload := fs.String("workload", "", "captured workload (JSONL or PostgreSQL log) of the application version now running")
	asJSON := fs.Bool("json", false, "print findings as JSON")
	failOn := fs.String("fail-on", "error", "lowest severity that fails: error, warning or info")
	serverMajor := fs.Int("server-version", 0, "PostgreSQL major version the migrations will run on (0: current)")
	disable := fs.StringSlice("disable", nil, "rule ids not to report (e.g. DT013,DT017)")
	c.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef(fs, "name one migration directory")
	}
	mf, err := migrate.ParseFormat(*format)
	if err != nil {
		return usagef(fs, "%v", err)
	}
	order := []migrate.Severity{migrate.SeverityInfo, migrate.SeverityWarning, migrate.SeverityError}
	threshold := slices.Index(order, migrate.Severity(*failOn))
	if threshold < 0 {
		return usagef(fs, "--fail-on %q: want error, warning or info", *failOn)
	}
	opts := migrate.LintOptions{Format: mf, ServerMajor: *serverMajor, Disable: *disable}
	if *workload != "" {
		w, err := loadLintWorkload(ctx, *workload)
		if err != nil {
			return err
		}
		opts.Workload = w
	}
	findings, err := migrate.LintDir(fs.Arg(0), opts)
	if err != nil {
		return err
	}
	if *asJSON {
		err = findings.WriteJSON(e.stdout)
	} else {
		err = findings.WriteText(e.stdout)
	}
	if err != nil {
		return err
	}
	for _, sev := range order[threshold:] {
		if findings.Count(sev) > 0 {
			return errRegressions
		}
	}
	return nil
}

// loadLintWorkload collects the statements of a captured workload for the
// lint's cross-check. Only distinct statement texts are kept.
func loadLintWorkload(ctx context.Context, path string) (*migrate.Workload, error) {
	r, err := replay.Open(ctx, path, replay.ReaderOptions{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	seen := map[string]bool{}
	var queries []string
	for r.Next() {
		ev := r.Event()
		if ev.Kind == replay.KindStatement && !seen[ev.SQL] {
			seen[ev.SQL] = true
			queries = append(queries, ev.SQL)
		}
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read workload %s: %w", path, err)
	}
	return migrate.NewWorkload(slices.Values(queries)), nil
}
