package main

import (
	"context"
	"fmt"
	"os"
	"runtime"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/harness"
	"github.com/dbtwin/dbtwin/internal/progress"
	"github.com/dbtwin/dbtwin/reports"
)

func runRun(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("run", "-c dbtwin.yaml [--tenant T] [--shard i/n] [--parallel N] [--report-dir DIR] [--format F,...]",
		`Verify a release against every tenant of the config. Per tenant, in one
throwaway sandbox:

  1. clone the source (or restore the dump) into a golden copy, masked in the
     stream when masking.rules is set (key in DBTWIN_MASK_KEY; the run refuses
     to start while a column that surely holds personal data is kept without
     a reason)
  2. fan it out into baseline, candidate and control by template copy
  3. apply the migrations to the candidate (lock and rewrite metrics) and lint
     them against the workload
  4. replay the workload, masked like the data, on all three (ordered mode)
  5. compare the results statement by statement (control = noise filter),
     then the final contents of every table, and EXPLAIN what got slower
  6. write the reports: terminal, markdown, junit, json, html

Results files stay in the report directory, <tenant>/results-*.jsonl, for
'dbtwin compare'. With --shard i/n (a CI matrix) only every n-th tenant runs
and report.json is the shard's, for 'dbtwin report merge'. When
$GITHUB_STEP_SUMMARY is set the Markdown report is appended to it.

Exit code 0: no regression; 1: regressions found; 2: the harness failed
(bad config, unreachable source, ...). The sandbox is removed in every case.`, e)
	cfgPath := fs.StringP("config", "c", "dbtwin.yaml", "the run's configuration file")
	tenant := fs.String("tenant", "", "run only this tenant")
	shard := fs.String("shard", "", "run only shard i of n (1-based, e.g. 2/4): tenants at positions i, i+n, i+2n, ...")
	parallel := fs.Int("parallel", 1, "tenants run at once, each with its own databases in the sandbox")
	jobs := fs.Int("jobs", runtime.NumCPU(), "parallel copy workers per clone")
	reportDir := fs.String("report-dir", "", "directory for the reports and results files (default: report.dir of the config, else dbtwin-report)")
	formats := fs.StringSlice("format", nil, "report formats: terminal, markdown, junit, json, html (default: report.formats of the config, else all)")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef(fs, "unexpected argument %q (the config is given with -c)", fs.Arg(0))
	}
	sh, err := harness.ParseShard(*shard)
	if err != nil {
		return usagef(fs, "--shard: %v", err)
	}
	if *parallel < 1 {
		return usagef(fs, "--parallel must be at least 1 (got %d)", *parallel)
	}
	if *jobs < 1 {
		return usagef(fs, "--jobs must be at least 1 (got %d)", *jobs)
	}
	for _, f := range *formats {
		if _, err := reports.New(f); err != nil {
			return usagef(fs, "--format: %v", err)
		}
	}
	log, prog, err := withProgress(e, &c)
	if err != nil {
		return usagef(fs, "%v", err)
	}
	defer prog.Close()
	cfg, err := harness.LoadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if fs.Changed("pg-bindir") || cfg.Sandbox.PGBinDir == "" {
		cfg.Sandbox.PGBinDir = c.pgBinDir
	}
	bars := progress.IsTerminal(e.stderr) && *parallel == 1
	opts := harness.RunOptions{
		Tenant:    *tenant,
		Shard:     sh,
		Parallel:  *parallel,
		Jobs:      *jobs,
		StateDir:  c.stateDir,
		ReportDir: *reportDir,
		Formats:   *formats,
		Terminal:  e.stdout,
		Logger:    log,
		Version:   version(),
		// Replays report as log lines (every 10 s and at the end): a second
		// set of bars beside the clone's would garble the terminal.
		ReplayProgress: func(label string) harness.Counter {
			return progress.NewCounter(e.stderr, false, log, label)
		},
	}
	if bars {
		opts.Progress = prog
	}
	rep, err := harness.Run(ctx, cfg, opts)
	prog.Close()
	if rep != nil {
		if serr := appendStepSummary(rep); serr != nil {
			fmt.Fprintf(e.stderr, "dbtwin run: %v\n", serr)
		}
	}
	if err != nil {
		return err
	}
	if rep.Verdict.Regressions {
		return errRegressions
	}
	return nil
}

// appendStepSummary appends the Markdown report to $GITHUB_STEP_SUMMARY,
// when GitHub Actions set it.
func appendStepSummary(rep *compare.Report) error {
	path := os.Getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	r, err := reports.New("markdown")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("write the GitHub step summary: %w", err)
	}
	if err := r.Render(f, rep); err != nil {
		f.Close()
		return fmt.Errorf("write the GitHub step summary: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the GitHub step summary: %w", err)
	}
	return nil
}
