package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/dbtwin/dbtwin/masking"
	"github.com/dbtwin/dbtwin/migrate"
	"github.com/jackc/pgx/v5"
)

// tenantRun is one tenant's pass through the pipeline.
type tenantRun struct {
	r      *runner
	t      TenantConfig
	log    *slog.Logger
	phases []compare.Phase
	notes  []string
	dbs    []string // sandbox databases made for this tenant
}

// stage runs one named stage, timing it and logging its start and end.
// Its error is wrapped as "tenant T: <what>: …".
func (tr *tenantRun) stage(name, what string, f func() error) error {
	tr.log.Info("stage started", "stage", name)
	start := time.Now()
	err := f()
	d := time.Since(start)
	tr.phases = append(tr.phases, compare.Phase{Name: name, Duration: d})
	if err != nil {
		tr.log.Warn("stage failed", "stage", name, "took", d.Round(time.Millisecond), "err", err)
		return fmt.Errorf("tenant %s: %s: %w", tr.t.Name, what, err)
	}
	tr.log.Info("stage done", "stage", name, "took", d.Round(time.Millisecond))
	return nil
}

func (tr *tenantRun) note(format string, a ...any) {
	tr.notes = append(tr.notes, fmt.Sprintf("tenant %s: ", tr.t.Name)+fmt.Sprintf(format, a...))
}

func (tr *tenantRun) dsn(role string) string { return tr.r.sb.DSN(dbName(tr.t.Name, role)) }

// runTenant takes one tenant through clone, mask, fan-out, migrate,
// replay, compare, final state and EXPLAIN, and returns its report. Its
// databases are dropped at the end, whatever happened, to keep the
// sandbox's disk use bounded by the tenants running at once.
func (r *runner) runTenant(ctx context.Context, t TenantConfig) (_ *compare.Report, err error) {
	tr := &tenantRun{r: r, t: t, log: r.log.With("tenant", t.Name)}
	defer func() {
		cctx := context.WithoutCancel(ctx)
		for _, db := range tr.dbs {
			if derr := r.sb.DropDatabase(cctx, db); derr != nil {
				tr.log.Warn("drop tenant database", "database", db, "err", derr)
			}
		}
	}()
	start := time.Now()
	tr.log.Info("tenant started", "from", tenantSource(t))

	// 1. Masking preflight: refuse to start when a column that surely holds
	// personal data is kept without a reason.
	var plan *masking.Plan
	if r.rules != nil && t.Source != "" {
		if err := tr.stage("mask_check", "check masking rules against the source", func() error {
			var err error
			plan, err = tr.checkMasking(ctx, t.Source)
			return err
		}); err != nil {
			return nil, err
		}
	}

	// 2. Clone the source (masked in the stream) or restore the dump
	// (masked in place) into the golden copy.
	golden := dbName(t.Name, roleGolden)
	if err := tr.stage("clone", "clone into the sandbox", func() error {
		var err error
		plan, err = tr.cloneGolden(ctx, golden, plan)
		return err
	}); err != nil {
		return nil, err
	}

	// 3. The workload, masked like the data, written once for the three
	// replays.
	var wl preparedWorkload
	if err := tr.stage("workload", "prepare the workload", func() error {
		var err error
		wl, err = tr.prepareWorkload(ctx, plan)
		return err
	}); err != nil {
		return nil, err
	}

	// 4. Fan out by template copy.
	if err := tr.stage("fan_out", "fan out the golden clone", func() error {
		for _, role := range []string{roleBaseline, roleCandidate, roleControl} {
			db := dbName(t.Name, role)
			tr.dbs = append(tr.dbs, db)
			if err := r.sb.CreateDatabaseFromTemplate(ctx, db, golden); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	serverVersion, major, err := serverVersionOf(ctx, tr.dsn(roleBaseline))
	if err != nil {
		return nil, fmt.Errorf("tenant %s: read the sandbox's version: %w", t.Name, err)
	}

	// 5. Migrate the candidate; lint the migrations against the workload.
	var migRep *migrate.Report
	var lint migrate.Findings
	if err := tr.stage("migrate", "migrate candidate", func() error {
		var err error
		migRep, lint, err = tr.migrate(ctx, wl, major)
		return err
	}); err != nil {
		return nil, err
	}

	// 6. Replay on baseline, candidate and control.
	dir := filepath.Join(r.reportDir, t.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tenant %s: create results directory: %w", t.Name, err)
	}
	results := map[string]string{}
	for _, role := range []string{roleBaseline, roleCandidate, roleControl} {
		path := filepath.Join(dir, "results-"+role+".jsonl")
		results[role] = path
		if err := tr.stage("replay_"+role, "replay on "+role, func() error {
			return tr.replay(ctx, wl, role, path)
		}); err != nil {
			return nil, err
		}
	}

	// 7. Compare.
	var rep *compare.Report
	if err := tr.stage("compare", "compare results", func() error {
		var err error
		rep, err = compareFiles(ctx, results[roleBaseline], results[roleCandidate], results[roleControl], r.cmpCfg, t.Name, r.opts.Version)
		return err
	}); err != nil {
		return nil, err
	}

	// 8. Final state of every table.
	if err := tr.stage("final_state", "compare final state", func() error {
		fs, err := CompareFinalState(ctx, tr.dsn(roleBaseline), tr.dsn(roleCandidate), tr.dsn(roleControl), StateOptions{})
		if err != nil {
			return err
		}
		for _, n := range fs.Notes {
			tr.note("final state: %s", n)
		}
		return rep.SetFinalState(fs.Diffs)
	}); err != nil {
		return nil, err
	}

	// 9. EXPLAIN what got slower, on both sides.
	if need := rep.NeedsExplain(); len(need) > 0 {
		if err := tr.stage("explain", "explain slower statements", func() error {
			plans, notes, err := ExplainGeneric(ctx, tr.dsn(roleBaseline), tr.dsn(roleCandidate), need)
			if err != nil {
				return err
			}
			for _, n := range notes {
				tr.note("explain: %s", n)
			}
			for fp, p := range plans {
				if err := rep.AttachPlans(fp, p); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}

	if err := rep.SetMigration(migRep, lint); err != nil {
		return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
	}
	if wl.dropped > 0 {
		tr.note("workload: %d statements the parser rejected were dropped (they cannot be masked)", wl.dropped)
	}
	tr.phases = append(tr.phases, compare.Phase{Name: "total", Duration: time.Since(start)})
	if err := rep.SetEnv(compare.Env{PostgresBaseline: serverVersion, PostgresCandidate: serverVersion, Phases: tr.phases}); err != nil {
		return nil, fmt.Errorf("tenant %s: %w", t.Name, err)
	}
	rep.Meta.Notes = append(rep.Meta.Notes, tr.notes...)
	tr.log.Info("tenant done", "verdict", rep.Verdict.Headline, "took", time.Since(start).Round(time.Millisecond))
	return rep, nil
}

// tenantSource describes where a tenant comes from, for logs.
func tenantSource(t TenantConfig) string {
	if t.Dump != "" {
		return "dump " + t.Dump
	}
	return pgdsn.Describe(t.Source)
}

// checkMasking scans dsn for personal data, builds the masking plan from
// its schema and fails when a high-confidence PII column is kept without
// a reason.
func (tr *tenantRun) checkMasking(ctx context.Context, dsn string) (*masking.Plan, error) {
	scan, err := masking.Scan(ctx, dsn, masking.ScanOptions{})
	if err != nil {
		return nil, err
	}
	plan, _, err := LoadMaskPlan(ctx, dsn, tr.r.rules, tr.r.maskKey)
	if err != nil {
		return nil, err
	}
	if err := plan.CheckReasons(scan); err != nil {
		return nil, fmt.Errorf("refuse to start: %w", err)
	}
	return plan, nil
}

// cloneGolden makes the tenant's golden copy and returns the masking plan
// the workload is masked with (nil without masking).
func (tr *tenantRun) cloneGolden(ctx context.Context, golden string, plan *masking.Plan) (*masking.Plan, error) {
	r := tr.r
	// Create it through the sandbox first, so the sandbox knows to drop it
	// (the server backend drops only what it created); the copier fills an
	// empty target.
	tr.dbs = append(tr.dbs, golden)
	if err := r.sb.CreateDatabase(ctx, golden); err != nil {
		return nil, err
	}
	dst := r.sb.DSN(golden)
	opts := clone.Options{Jobs: r.opts.Jobs, BinDir: r.binDir, Logger: tr.log, Progress: r.opts.Progress}
	if tr.t.Source != "" {
		if r.rules == nil {
			res, err := clone.Clone(ctx, tr.t.Source, dst, opts)
			if err != nil {
				return nil, err
			}
			tr.log.Info("cloned", "tables", len(res.Tables), "rows", res.Rows, "bytes", res.Bytes)
			return nil, nil
		}
		res, audit, err := MaskedClone(ctx, tr.t.Source, dst, r.rules, r.maskKey, opts)
		if err != nil {
			return nil, err
		}
		leaked, sampled := 0, 0
		for _, c := range audit.Columns {
			sampled += c.Sampled
			leaked += c.Leaked
		}
		tr.log.Info("cloned and masked", "tables", len(res.Tables), "rows", res.Rows, "bytes", res.Bytes,
			"audited_columns", len(audit.Columns), "values_sampled", sampled, "leaked", leaked)
		return plan, nil
	}

	res, err := clone.Restore(ctx, tr.t.Dump, dst, opts)
	if err != nil {
		return nil, err
	}
	tr.log.Info("restored", "dump", tr.t.Dump, "took", res.Duration.Round(time.Millisecond))
	if r.rules == nil {
		return nil, nil
	}
	// The dump's rows are in the sandbox unmasked: mask them in place
	// before anything else reads them. The plan comes from the clone's own
	// catalog.
	plan, err = tr.checkMasking(ctx, dst)
	if err != nil {
		return nil, err
	}
	if r.cfg.Sandbox.Backend == "server" {
		if err := masking.MarkSandbox(ctx, dst, r.runID); err != nil {
			return nil, err
		}
	}
	applied, err := masking.ApplyInPlace(ctx, dst, plan, masking.ApplyOptions{StateDir: r.opts.StateDir, Logger: tr.log})
	if err != nil {
		return nil, fmt.Errorf("mask the restored dump in place: %w", err)
	}
	tr.log.Info("masked in place", "tables", len(applied.Tables), "rows", applied.Rows)
	return plan, nil
}

// migrate applies the migrations to the candidate and lints the pending
// ones against the workload. A failed migration is a finding (in the
// report), not an error.
func (tr *tenantRun) migrate(ctx context.Context, wl preparedWorkload, major int) (*migrate.Report, migrate.Findings, error) {
	r := tr.r
	dsn := r.migrationDSN(dbName(tr.t.Name, roleCandidate))
	m, err := migrate.New(migrate.Config{DSN: dsn, Set: r.migSet, Command: r.migCmd}, migrate.WithLogger(tr.log))
	if err != nil {
		return nil, nil, err
	}
	var lint migrate.Findings
	if r.migSet != nil {
		plan, err := m.Plan(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("plan migrations: %w", err)
		}
		queries, qerr := wl.queries(ctx)
		lint = migrate.Lint(plan.Pending, migrate.LintOptions{Workload: migrate.NewWorkload(queries), ServerMajor: major})
		if err := qerr(); err != nil {
			return nil, nil, fmt.Errorf("read the workload for lint: %w", err)
		}
		tr.log.Info("migrations linted", "pending", len(plan.Pending), "findings", len(lint),
			"errors", lint.Count(migrate.SeverityError), "warnings", lint.Count(migrate.SeverityWarning))
	}
	rep, err := m.Apply(ctx)
	var aerr *migrate.ApplyError
	switch {
	case errors.As(err, &aerr):
		tr.log.Warn("migration failed (reported as a finding)", "migration", aerr.Failed.Version+" "+aerr.Failed.Name, "sqlstate", aerr.SQLState)
		if rep == nil {
			rep = &migrate.Report{Migrations: append(append([]migrate.MigrationResult(nil), aerr.Applied...), aerr.Failed)}
		}
	case err != nil:
		return nil, nil, err
	default:
		tr.log.Info("migrations applied", "migrations", len(rep.Migrations), "took", rep.Duration.Round(time.Millisecond))
	}
	return rep, lint, nil
}

// serverVersionOf returns the server's version string and major version.
func serverVersionOf(ctx context.Context, dsn string) (string, int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", 0, fmt.Errorf("connect to %s: %w", pgdsn.Describe(dsn), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var v string
	var num int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('server_version_num')::int").Scan(&v, &num); err != nil {
		return "", 0, err
	}
	return v, num / 10000, nil
}

// compareFiles compares three results files.
func compareFiles(ctx context.Context, baseline, candidate, control string, cfg compare.Config, tenant, version string) (*compare.Report, error) {
	b, err := os.Open(baseline)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	c, err := os.Open(candidate)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	k, err := os.Open(control)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	return compare.Compare(ctx, b, c, k, cfg, compare.WithTenant(tenant), compare.WithDbtwinVersion(version))
}
