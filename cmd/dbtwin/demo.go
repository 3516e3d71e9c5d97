package main

import (
	"context"
	"runtime"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/fixtures"
	"github.com/dbtwin/dbtwin/harness"
	"github.com/dbtwin/dbtwin/internal/progress"
)

func runDemo(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("demo", "[--tenants N] [--scale S] [--release safe,release,breaking] [--report-dir DIR] [--keep]",
		`Run dbtwin's whole pipeline on built-in fixtures, in embedded sandboxes.

One embedded cluster plays the customers' production servers: the fixture
tenants are generated into it (one large, one tiny, one with unusual data),
and the fixture application runs against a copy through the capture proxy,
which records the workload. Then each release — by default a safe,
expand-only migration set and the "next release", which brings exactly
three regressions (a dropped column the old app reads: a new error; a
redefined view: different rows; a 50 ms trigger on new support tickets:
slower); with --release breaking also a set stacking five hazards — is
verified against every tenant exactly as 'dbtwin run' does: masked clone
(with the demo's public key), audit, fan-out into baseline/candidate/control,
migrations with lock metrics and lint, replay on all three, comparison,
reports.

The demo checks itself: the safe release must pass, the next release show
exactly its three regressions on the tenant the workload was captured on,
and the breaking one be caught. Nothing outside the sandboxes is touched;
they are removed at the end (the source cluster stays up with --keep).`, e)
	cfg := harness.DemoConfig{Tenants: 3, Scale: 0.02, Seed: 1, AppSessions: 4, AppActions: 60, Parallel: 1}
	fs.IntVar(&cfg.Tenants, "tenants", cfg.Tenants, "number of fixture tenants")
	fs.Float64Var(&cfg.Scale, "scale", cfg.Scale, "fixture size: 1 ≈ 100 MB per tenant")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "fixture and workload seed")
	fs.StringSliceVar(&cfg.Releases, "release", []string{fixtures.MigrationsSafe, fixtures.MigrationsRelease}, "fixture releases to verify: safe, release, breaking")
	fs.IntVar(&cfg.AppActions, "actions", cfg.AppActions, "user actions per application session in the captured workload")
	fs.IntVar(&cfg.Jobs, "jobs", runtime.NumCPU(), "parallel copy workers per clone")
	fs.IntVar(&cfg.Parallel, "parallel", cfg.Parallel, "tenants verified at once")
	fs.StringVar(&cfg.ReportDir, "report-dir", "dbtwin-demo-report", "where each release's reports go")
	fs.BoolVar(&cfg.Keep, "keep", false, "leave the source cluster running afterwards and print how to connect")
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef(fs, "unexpected argument %q", fs.Arg(0))
	}
	log, prog, err := withProgress(e, &c)
	if err != nil {
		return usagef(fs, "%v", err)
	}
	defer prog.Close()
	cfg.Logger = log
	cfg.Local = local.Config{BinDir: c.pgBinDir, StateDir: c.stateDir}
	cfg.Terminal = e.stdout
	cfg.Version = version()
	if progress.IsTerminal(e.stderr) && cfg.Parallel <= 1 {
		cfg.Progress = prog
		cfg.ReplayProgress = func(label string) harness.Counter {
			return progress.NewCounter(e.stderr, true, log, label)
		}
	}
	rep, err := harness.Demo(ctx, cfg)
	prog.Close()
	if rep != nil {
		if werr := rep.WriteText(e.stdout); werr != nil && err == nil {
			err = werr
		}
	}
	return err
}
