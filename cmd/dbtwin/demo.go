package main

import (
	"context"
	"runtime"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/harness"
	"github.com/dbtwin/dbtwin/internal/progress"
)

func runDemo(ctx context.Context, e *env, args []string) error {
	var c common
	fs := newFlagSet("demo", "[--tenants N] [--scale S] [--keep]",
		`Run dbtwin's pipeline on the built-in fixtures in an embedded sandbox:
generate the fixture tenants (one large, one tiny, one with unusual data),
clone each one with the parallel logical copier, fan every clone out into
baseline, candidate and control by template copy, check the clones' row
counts against their sources, and print what was cloned and how fast.
Nothing outside the sandbox is touched; it is removed at the end.`, e)
	cfg := harness.DemoConfig{Tenants: 3, Scale: 0.05, Seed: 1}
	fs.IntVar(&cfg.Tenants, "tenants", cfg.Tenants, "number of fixture tenants")
	fs.Float64Var(&cfg.Scale, "scale", cfg.Scale, "fixture size: 1 ≈ 100 MB per tenant")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "fixture seed")
	fs.IntVar(&cfg.Jobs, "jobs", runtime.NumCPU(), "parallel copy workers per clone")
	fs.BoolVar(&cfg.Keep, "keep", false, "leave the sandbox running afterwards and print how to connect")
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
	cfg.Logger = log
	cfg.Local = local.Config{BinDir: c.pgBinDir, StateDir: c.stateDir}
	if progress.IsTerminal(e.stderr) {
		// Bars on a terminal; elsewhere one log line per tenant is enough
		// (dbtwin clone logs every table, the demo does not need to).
		cfg.Progress = prog
	}
	rep, err := harness.Demo(ctx, cfg)
	prog.Close()
	if err != nil {
		return err
	}
	return rep.WriteText(e.stdout)
}
