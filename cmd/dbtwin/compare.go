package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/harness"
	"github.com/dbtwin/dbtwin/reports"
)

func runCompare(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("compare", "BASELINE.jsonl CANDIDATE.jsonl [--control CONTROL.jsonl] [--report-dir DIR] [--format F,...]",
		`Compare two replay results files statement by statement (paired by session
and seq) and write the regression report. With --control (a second replay of
the baseline), differences the control shows too are non-determinism and
are reported as noise, not regressions.

Exit code 0: no regression; 1: regressions found; 2: bad input.`, e)
	control := fs.String("control", "", "results of a second replay of the baseline, for noise control")
	reportDir := fs.String("report-dir", "dbtwin-report", "directory for the report files")
	formats := fs.StringSlice("format", harness.DefaultFormats, "report formats: terminal, markdown, junit, json, html")
	cfgPath := fs.String("config", "", "comparison settings (YAML: latency, float_tolerance, rules, …)")
	tenant := fs.String("tenant", "", "tenant name to put in the report")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef(fs, "name the baseline and the candidate results files")
	}
	cfg := compare.DefaultConfig()
	if *cfgPath != "" {
		b, err := os.ReadFile(*cfgPath)
		if err != nil {
			return fmt.Errorf("read comparison settings: %w", err)
		}
		if cfg, err = compare.ParseConfig(b); err != nil {
			return fmt.Errorf("%s: %w", *cfgPath, err)
		}
	}
	open := func(p string) (*os.File, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("open results: %w", err)
		}
		return f, nil
	}
	base, err := open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer base.Close()
	cand, err := open(fs.Arg(1))
	if err != nil {
		return err
	}
	defer cand.Close()
	var ctrl *os.File
	if *control != "" {
		if ctrl, err = open(*control); err != nil {
			return err
		}
		defer ctrl.Close()
	}
	// A nil *os.File in an io.Reader would not be a nil interface.
	var ctrlReader io.Reader
	if ctrl != nil {
		ctrlReader = ctrl
	}
	rep, err := compare.Compare(ctx, base, cand, ctrlReader, cfg, compare.WithTenant(*tenant), compare.WithDbtwinVersion(version()))
	if err != nil {
		return err
	}
	return writeAndGate(e, rep, *reportDir, *formats)
}

func runReport(ctx context.Context, e *env, args []string) error {
	if err := onlySubcommand(e, args, "report", "merge", "SHARD.json... [--report-dir DIR]", "Work with reports."); err != nil {
		return err
	}
	var c common
	fs := newFlagSet("report merge", "SHARD.json... [--report-dir DIR] [--format F,...]",
		`Merge the JSON reports of shards (a GitHub Actions matrix, one job per group
of tenants) into one report, and render it. The merged verdict fails if any
shard found a regression.`, e)
	reportDir := fs.String("report-dir", "dbtwin-report", "directory for the merged report files")
	formats := fs.StringSlice("format", harness.DefaultFormats, "report formats: terminal, markdown, junit, json, html")
	c.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef(fs, "name at least one shard report (report.json)")
	}
	var shards []*compare.Report
	for _, p := range fs.Args() {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("open shard report: %w", err)
		}
		r, err := reports.ReadJSON(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("read shard report %s: %w", p, err)
		}
		shards = append(shards, r)
	}
	merged, err := reports.Merge(shards...)
	if err != nil {
		return err
	}
	return writeAndGate(e, merged, *reportDir, *formats)
}

// writeAndGate writes the report and turns its verdict into the exit code.
func writeAndGate(e *env, rep *compare.Report, dir string, formats []string) error {
	paths, err := harness.WriteReports(rep, dir, formats, e.stdout)
	if err != nil {
		return err
	}
	for _, p := range paths {
		fmt.Fprintf(e.stderr, "wrote %s\n", p)
	}
	if rep.Verdict.Regressions {
		return errRegressions
	}
	return nil
}
