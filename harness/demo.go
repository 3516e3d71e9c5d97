package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/fixtures"
	"github.com/dbtwin/dbtwin/internal/atomicfile"
	"github.com/dbtwin/dbtwin/internal/workdir"
	"github.com/dbtwin/dbtwin/replay"
)

// DemoConfig says how big a demo to run and where.
type DemoConfig struct {
	// Tenants, Scale and Seed size the fixtures (see fixtures.Config).
	Tenants int
	Scale   float64
	Seed    int64
	// Releases are the fixture migration sets to verify, in order
	// (fixtures.MigrationsSafe, fixtures.MigrationsRelease,
	// fixtures.MigrationsBreaking); default safe and release.
	Releases []string
	// AppSessions and AppActions size the captured workload.
	AppSessions, AppActions int
	// Jobs is the number of parallel copy workers per clone; Parallel how
	// many tenants run at once.
	Jobs, Parallel int
	// ReportDir receives one report directory per release.
	ReportDir string
	// Keep leaves the demo's source cluster (the stand-in for the
	// customers' servers) running at the end.
	Keep bool
	// Local configures the embedded clusters (binaries, state directory).
	Local local.Config
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
	// Terminal receives each run's terminal report; nil: none.
	Terminal io.Writer
	// Progress and ReplayProgress, if set, draw progress (see RunOptions).
	Progress       clone.Progress
	ReplayProgress func(label string) Counter
	// Version is the dbtwin version for the reports.
	Version string
}

// DemoReport is what the demo did.
type DemoReport struct {
	// Sources is the cluster that played the customers' servers.
	Sources string
	// SourcesDSN is how to reach it (only when Keep was set).
	SourcesDSN string
	// PostgresVersion is its PostgreSQL major version.
	PostgresVersion int
	// Generate and Capture are how long generating the tenants and
	// capturing the application's workload took; Statements how many
	// statements were captured.
	Generate, Capture time.Duration
	Statements        int64
	// Runs has one verification run per release.
	Runs []DemoRun
}

// DemoRun is one release verified against every tenant.
type DemoRun struct {
	Release   string
	ReportDir string
	Report    *compare.Report
	Duration  time.Duration
	// Expected says whether the verdict is the one this release should
	// get: the safe release passes, the release shows exactly its three
	// regressions (a new error, different rows, slower) on the tenant the
	// workload was captured on, the breaking one is caught.
	Expected bool
	// Problems say why the verdict is not the expected one.
	Problems []string
	// Tenants has one line per tenant: its regressions, by kind.
	Tenants []string
}

// demoReleaseClasses are the regressions the demo's "next release"
// (fixtures.MigrationsRelease) must show, one fingerprint each, on the
// tenant the workload was captured on: orders.notes dropped (the order
// detail query fails), order_summaries.item_count redefined (the home
// page query returns other values) and a 50 ms trigger on new support
// tickets (the ticket INSERT is slower).
var demoReleaseClasses = []compare.Class{compare.NewError, compare.DifferentRows, compare.Slower}

// checkDemoRun says whether a release's report is the one the demo
// expects, and describes each tenant's regressions. captured is the
// tenant the workload was captured on. The other tenants replay the same
// workload on their own data: statements that touch rows only the
// captured tenant has succeed identically there, so they may show a
// subset of the three regressions, but never anything else.
func checkDemoRun(release, captured string, rep *compare.Report) (lines, problems []string) {
	for _, t := range rep.Tenants {
		lines = append(lines, demoTenantLine(t))
	}
	switch release {
	case fixtures.MigrationsSafe:
		// No regression at all: the control replay's noise (now() in the
		// login UPDATE, LIMIT without ORDER BY) must not count.
		if rep.Verdict.Regressions {
			problems = append(problems, "the safe release was flagged: "+strings.Join(rep.Verdict.Reasons, "; "))
		}
	case fixtures.MigrationsRelease:
		seen := false
		for _, t := range rep.Tenants {
			var got []compare.Class
			for _, f := range t.Findings {
				if f.Regression {
					got = append(got, f.Class)
				}
			}
			slices.SortFunc(got, func(a, b compare.Class) int { return b.Rank() - a.Rank() })
			s := t.Summary
			if s.TablesDiffering+s.MigrationsFailed+s.LintFailing > 0 {
				problems = append(problems, fmt.Sprintf("%s: %d tables differing, %d migrations failed, %d failing lint findings; want none",
					t.Tenant, s.TablesDiffering, s.MigrationsFailed, s.LintFailing))
			}
			if t.Tenant == captured {
				seen = true
				if !slices.Equal(got, demoReleaseClasses) {
					problems = append(problems, fmt.Sprintf("%s: regressions %v, want exactly %v", t.Tenant, got, demoReleaseClasses))
				}
				continue
			}
			rest := slices.Clone(demoReleaseClasses)
			for _, c := range got {
				i := slices.Index(rest, c)
				if i < 0 {
					problems = append(problems, fmt.Sprintf("%s: unexpected regressions %v, want at most %v", t.Tenant, got, demoReleaseClasses))
					break
				}
				rest = slices.Delete(rest, i, i+1)
			}
		}
		if !seen {
			problems = append(problems, fmt.Sprintf("the tenant the workload was captured on (%s) is not in the report", captured))
		}
	default: // fixtures.MigrationsBreaking
		if !rep.Verdict.Regressions {
			problems = append(problems, "the breaking release was not caught")
		}
	}
	return lines, problems
}

// demoTenantLine is "acme: 3 regressions: new error (42703 …), …".
func demoTenantLine(t compare.TenantReport) string {
	var b strings.Builder
	b.WriteString(t.Tenant + ": " + t.Verdict.Headline)
	var parts []string
	findings := slices.Clone(t.Findings)
	slices.SortStableFunc(findings, func(a, b compare.Finding) int { return b.Class.Rank() - a.Class.Rank() })
	for _, f := range findings {
		if !f.Regression {
			continue
		}
		var what string
		switch f.Class {
		case compare.NewError, compare.ChangedError:
			what = strings.TrimSpace(f.Example.Candidate.SQLState + " " + f.Example.Candidate.Message)
		case compare.Slower:
			for _, l := range t.Latency {
				if l.Fingerprint == f.Fingerprint {
					what = fmt.Sprintf("p50 %s → %s: ", roundDuration(l.Baseline.P50), roundDuration(l.Candidate.P50))
				}
			}
			what += shortSQL(f.Example.SQL)
		default:
			what = shortSQL(f.Example.SQL)
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", f.Class.Label(), what))
	}
	s := t.Summary
	if s.TablesDiffering > 0 {
		parts = append(parts, fmt.Sprintf("%d tables differ after replay", s.TablesDiffering))
	}
	if s.MigrationsFailed > 0 {
		parts = append(parts, fmt.Sprintf("%d migrations failed", s.MigrationsFailed))
	}
	if s.LintFailing > 0 {
		parts = append(parts, fmt.Sprintf("%d lint findings", s.LintFailing))
	}
	if len(parts) > 0 {
		b.WriteString(": " + strings.Join(parts, ", "))
	}
	return b.String()
}

func roundDuration(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(10 * time.Microsecond)
}

// shortSQL is a statement on one line, cut to 60 characters.
func shortSQL(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if r := []rune(sql); len(r) > 60 {
		sql = string(r[:59]) + "…"
	}
	return sql
}

// Demo runs dbtwin's whole pipeline on generated fixtures. One embedded
// cluster plays the customers' production servers: the fixture tenants are
// generated into it, and the fixture application (fixtures.SimulateApp) runs
// against a copy of the first tenant through the capture proxy, which
// records the workload. Then, for each release (the safe and the breaking
// migration sets), Run verifies it against every tenant exactly as
// `dbtwin run` would from a dbtwin.yaml — its own sandbox, a masked clone
// per tenant (with the demo's public key), fan-out, migrations, replay on
// baseline, candidate and control, comparison and reports.
//
// The demo checks itself: the safe release must pass (noise from the
// control replay not counted), the "next release" must show exactly its
// three regressions — a new error, different rows, slower — on the tenant
// the workload was captured on (and nothing else anywhere), and the
// breaking release must be caught; otherwise it returns an error. Everything it started is
// torn down at the end, also on error or cancellation (the source cluster
// stays up with Keep).
func Demo(ctx context.Context, cfg DemoConfig) (_ *DemoReport, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Releases) == 0 {
		cfg.Releases = []string{fixtures.MigrationsSafe, fixtures.MigrationsRelease}
	}
	if cfg.ReportDir == "" {
		cfg.ReportDir = "dbtwin-demo-report"
	}
	fcfg := fixtures.Config{Tenants: cfg.Tenants, Scale: cfg.Scale, Seed: cfg.Seed, Logger: log}
	if err := fcfg.Validate(); err != nil {
		return nil, err
	}
	for _, r := range cfg.Releases {
		if _, err := fixtures.Migrations(r); err != nil {
			return nil, err
		}
	}
	work, err := workdir.Make("", "demo")
	if err != nil {
		return nil, fmt.Errorf("create demo scratch directory: %w", err)
	}
	defer os.RemoveAll(work)

	lcfg := cfg.Local
	lcfg.Logger = log
	lcfg.Keep = cfg.Keep
	src, err := local.Start(ctx, lcfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !cfg.Keep || err != nil {
			if cerr := src.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	rep := &DemoReport{Sources: src.Name(), PostgresVersion: src.Major()}
	if cfg.Keep {
		rep.SourcesDSN = src.DSN("postgres")
	}

	log.Info("demo: generating the fixture tenants", "tenants", cfg.Tenants, "scale", cfg.Scale)
	start := time.Now()
	sums, err := fixtures.Generate(ctx, src.DSN("postgres"), fcfg)
	if err != nil {
		return nil, fmt.Errorf("generate fixtures: %w", err)
	}
	rep.Generate = time.Since(start)

	log.Info("demo: capturing the application's workload through the proxy")
	start = time.Now()
	workload := filepath.Join(work, "workload.jsonl")
	if rep.Statements, err = captureDemoWorkload(ctx, src, sums[0].Tenant.Database, workload, cfg); err != nil {
		return nil, fmt.Errorf("capture the demo workload: %w", err)
	}
	rep.Capture = time.Since(start)

	rules := filepath.Join(work, "masking.yaml")
	if err := os.WriteFile(rules, fixtures.MaskingRules(), 0o644); err != nil {
		return nil, err
	}
	for _, release := range cfg.Releases {
		dir, err := fixtures.WriteMigrations(work, release)
		if err != nil {
			return nil, err
		}
		var y strings.Builder
		fmt.Fprintf(&y, "# dbtwin demo: release %q against every fixture tenant\nversion: 1\ntenants:\n", release)
		for _, s := range sums {
			fmt.Fprintf(&y, "  - name: %s\n    source: %q\n", s.Tenant.Name, src.DSN(s.Tenant.Database))
		}
		fmt.Fprintf(&y, "masking:\n  rules: %q\nmigrations:\n  dir: %q\nworkload:\n  file: %q\n", rules, dir, workload)
		// Two replays of one workload on a shared 2-core CI box differ in
		// timing by more than 2x now and then, by 10 ms and more for a
		// statement all sessions run at once; the demo judges latency on
		// p50 over a few executions, 25 ms apart at least, so it shows
		// detection (the release's 50 ms ticket trigger), not jitter.
		y.WriteString("compare:\n  latency:\n    gate: p50\n    min_samples: 3\n    floor: 25ms\n")
		cfgPath := filepath.Join(work, "dbtwin-"+release+".yaml")
		if err := os.WriteFile(cfgPath, []byte(y.String()), 0o644); err != nil {
			return nil, err
		}
		rc, err := LoadConfig(cfgPath)
		if err != nil {
			return nil, fmt.Errorf("demo config: %w", err)
		}
		run := DemoRun{Release: release, ReportDir: filepath.Join(cfg.ReportDir, release)}
		log.Info("demo: verifying a release", "release", release, "tenants", len(sums))
		start := time.Now()
		run.Report, err = Run(ctx, rc, RunOptions{
			Parallel: cfg.Parallel, Jobs: cfg.Jobs, StateDir: cfg.Local.StateDir, ReportDir: run.ReportDir,
			Terminal: cfg.Terminal, Logger: log, Progress: cfg.Progress, ReplayProgress: cfg.ReplayProgress,
			Version: cfg.Version, MaskKey: []byte(DemoMaskKey),
		})
		if err != nil {
			return rep, fmt.Errorf("verify release %q: %w", release, err)
		}
		run.Duration = time.Since(start)
		run.Tenants, run.Problems = checkDemoRun(release, sums[0].Tenant.Name, run.Report)
		run.Expected = len(run.Problems) == 0
		rep.Runs = append(rep.Runs, run)
	}
	for _, r := range rep.Runs {
		if !r.Expected {
			return rep, fmt.Errorf("the %s release got the wrong verdict (%s: %s): see %s", r.Release, r.Report.Verdict.Headline,
				strings.Join(r.Problems, "; "), r.ReportDir)
		}
	}
	return rep, nil
}

// captureDemoWorkload runs the fixture application against a copy of the
// tenant db through the capture proxy and writes the workload to path. The
// copy keeps the tenant itself in its pre-workload state, as a clone taken
// before the capture window would be.
func captureDemoWorkload(ctx context.Context, src *local.Cluster, db, path string, cfg DemoConfig) (int64, error) {
	live := db + "_live"
	if err := src.CreateDatabaseFromTemplate(ctx, live, db); err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen for the capture proxy: %w", err)
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		ln.Close()
		return 0, err
	}
	defer f.Abort()
	p := &replay.Proxy{Upstream: src.DSN(live), Out: f}
	pctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- p.Serve(pctx, ln) }()
	addr := ln.Addr().(*net.TCPAddr)
	appDSN := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", addr.Port, local.Superuser, live)
	appErr := fixtures.SimulateApp(ctx, appDSN, fixtures.AppConfig{Sessions: cfg.AppSessions, Actions: cfg.AppActions, Seed: cfg.Seed})
	stop()
	serveErr := <-served
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return 0, serveErr
	}
	if appErr != nil {
		return 0, appErr
	}
	if err := f.Commit(); err != nil {
		return 0, err
	}
	return p.Stats().Statements, src.DropDatabase(ctx, live)
}

// WriteText renders what the demo did, after the runs' own reports.
func (r *DemoReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "\ndbtwin demo: fixtures generated in %s on %s (PostgreSQL %d); %d statements of the fixture app captured through the proxy in %s\n",
		r.Generate.Round(time.Millisecond), r.Sources, r.PostgresVersion, r.Statements, r.Capture.Round(time.Millisecond))
	for _, run := range r.Runs {
		mark := "as expected"
		if !run.Expected {
			mark = "NOT AS EXPECTED"
		}
		fmt.Fprintf(&b, "  release %-9s %s — %s (%s); reports in %s\n", run.Release+":", run.Report.Verdict.Headline, mark,
			run.Duration.Round(time.Millisecond), run.ReportDir)
		for _, t := range run.Tenants {
			fmt.Fprintf(&b, "    %s\n", t)
		}
		for _, p := range run.Problems {
			fmt.Fprintf(&b, "    NOT AS EXPECTED: %s\n", p)
		}
	}
	if r.SourcesDSN != "" {
		fmt.Fprintf(&b, "the source cluster is still up: psql %q (remove it with: dbtwin sandbox down %s)\n", r.SourcesDSN, r.Sources)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
