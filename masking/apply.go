package masking

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dbtwin/dbtwin/internal/pgdsn"
)

// ApplyOptions configure [ApplyInPlace]. The zero value is ready to use.
type ApplyOptions struct {
	// StateDir is the clone/local state directory [IsSandbox] consults.
	// Empty: local.DefaultStateDir().
	StateDir string
	// Logger receives progress (per table at Debug). Nil discards it.
	Logger *slog.Logger
	// Now is the clock for durations; nil means time.Now.
	Now func() time.Time
}

// ApplyReport says what [ApplyInPlace] did. It holds names, counts and
// durations, never a value.
type ApplyReport struct {
	// Database is the masked database's name.
	Database string `json:"database"`
	// Sandbox says why the database was accepted as a dbtwin sandbox.
	Sandbox string `json:"sandbox"`
	// Tables has one entry per table (partition) rewritten, in the order
	// they were rewritten.
	Tables []AppliedTable `json:"tables"`
	// Rows is the sum over Tables.
	Rows int64 `json:"rows"`
	// MatViews are the populated materialized views refreshed from the
	// masked rows.
	MatViews []string `json:"matviews,omitempty"`
	// Constraints are the primary keys, unique constraints, foreign keys
	// and declared references that touch a rewritten table, checked over
	// the masked rows before the commit.
	Constraints []ConstraintCheck `json:"constraints"`
	// Mask is the time until the rewriting transaction committed, Vacuum
	// that of VACUUM FULL of the rewritten tables, Analyze that of ANALYZE
	// and of the purge of the old statistics; Duration is the whole.
	Mask     time.Duration `json:"mask_ns"`
	Vacuum   time.Duration `json:"vacuum_ns"`
	Analyze  time.Duration `json:"analyze_ns"`
	Duration time.Duration `json:"duration_ns"`
}

// AppliedTable is one table rewritten by [ApplyInPlace].
type AppliedTable struct {
	// Table is the qualified name of the table or partition.
	Table string `json:"table"`
	// Rows is how many rows were masked.
	Rows int64 `json:"rows"`
	// Duration is the time its rows took to stream through the masker.
	Duration time.Duration `json:"duration_ns"`
}

// WriteText writes the report as a small table and a summary line.
func (r *ApplyReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mask apply: database %q (%s)\n", r.Database, r.Sandbox)
	width := len("table")
	for _, t := range r.Tables {
		width = max(width, len(t.Table))
	}
	fmt.Fprintf(&b, "  %-*s %12s %10s\n", width, "table", "rows", "time")
	for _, t := range r.Tables {
		fmt.Fprintf(&b, "  %-*s %12d %10s\n", width, t.Table, t.Rows, t.Duration.Round(time.Millisecond))
	}
	if len(r.MatViews) > 0 {
		fmt.Fprintf(&b, "materialized views refreshed: %s\n", strings.Join(r.MatViews, ", "))
	}
	bad := 0
	for _, c := range r.Constraints {
		if c.Violations > 0 {
			bad++
			fmt.Fprintf(&b, "%s %s on %s: %d violation(s)\n", c.Kind, c.Name, c.Table, c.Violations)
		}
	}
	fmt.Fprintf(&b, "constraints: %d checked, %d violated\n", len(r.Constraints), bad)
	fmt.Fprintf(&b, "masked %d rows in %d tables in %s (rewrite %s, vacuum full %s, analyze %s)\n",
		r.Rows, len(r.Tables), r.Duration.Round(time.Millisecond), r.Mask.Round(time.Millisecond),
		r.Vacuum.Round(time.Millisecond), r.Analyze.Round(time.Millisecond))
	_, err := io.WriteString(w, b.String())
	return err
}

// ApplyInPlace masks, in place, the database dsn names: a clone that holds
// unmasked rows because it was made where streaming through the masker is
// impossible (a volume snapshot). It refuses, with an error wrapping
// [ErrNotSandbox], any database [IsSandbox] does not accept, and needs a
// superuser there.
//
// Build plan from the target's own catalog (LoadCatalog on a connection to
// dsn, then [NewPlan]): ApplyInPlace fails closed when a table or column of
// the target is not in the plan's catalog, or has another type there.
//
// How, so that the result is all or nothing (never half masked):
//
//  1. One transaction on the target (the writer) sets session_replication_role
//     to replica, which switches off foreign-key checks and actions and
//     ordinary triggers while keys change, and locks every table to rewrite
//     in EXCLUSIVE mode (reads go on, writes wait). A trigger or rule that
//     would fire anyway (ENABLE ALWAYS or ENABLE REPLICA) is an error:
//     it would see unmasked rows.
//  2. A second session opens a REPEATABLE READ snapshot, after the locks and
//     before any write: it sees every original row throughout.
//  3. The writer deletes the rows of every table to rewrite (DELETE FROM
//     ONLY), then, table by table, streams COPY … TO STDOUT from the
//     snapshot through [FilterCopyText] into COPY … FROM STDIN (partitions
//     through their partitioned table, so a masked partition key is routed
//     right). Memory is bounded by a few buffers. No staging table is
//     needed: the snapshot predates the deletes, and the new rows are
//     invisible to it.
//  4. Populated materialized views are refreshed (their contents came from
//     unmasked rows). Keys and foreign keys that touch a rewritten table are
//     checked over the masked rows as [Audit] checks them: foreign keys were
//     bypassed, so each is re-checked with an anti-join. Planner statistics
//     (pg_statistic, pg_statistic_ext_data: most common values and
//     histograms sampled from the unmasked rows) are deleted. Any
//     violation, or any error before this point, rolls everything back.
//  5. COMMIT; then VACUUM FULL every rewritten table, so the old, unmasked
//     row versions (and their index entries and TOAST) are physically gone
//     from the database's files; ANALYZE the database; VACUUM FULL the
//     statistics catalogs, so the deleted statistics are gone too.
//
// Outside of what this can reach: the write-ahead log, the free blocks of
// the file system under the files VACUUM FULL replaced, the snapshot the
// clone was made from and older backups of that volume. Treat them as
// unmasked data.
//
// A failure after the commit (in VACUUM FULL or ANALYZE) returns the report
// with an error that says what still holds old row versions and what to run.
func ApplyInPlace(ctx context.Context, dsn string, plan *Plan, opts ApplyOptions) (*ApplyReport, error) {
	if plan == nil {
		return nil, errors.New("mask apply: no masking plan")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &applier{plan: plan, o: opts, dsn: dsn, desc: pgdsn.Describe(dsn), rep: &ApplyReport{}}
	start := opts.Now()
	defer func() { a.rep.Duration = opts.Now().Sub(start) }()

	w, err := a.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer w.Close(context.WithoutCancel(ctx))
	a.w = w
	if err := a.prepare(ctx); err != nil {
		return nil, err
	}
	if err := a.rewrite(ctx); err != nil {
		return nil, fmt.Errorf("mask apply on %s: %w (rolled back: nothing was changed)", a.desc, err)
	}
	a.rep.Mask = opts.Now().Sub(start)
	if err := a.cleanup(ctx); err != nil {
		return a.rep, fmt.Errorf("mask apply on %s: %w", a.desc, err)
	}
	return a.rep, nil
}

// applier is one ApplyInPlace run.
type applier struct {
	plan *Plan
	o    ApplyOptions
	dsn  string
	desc string
	rep  *ApplyReport

	w      *pgx.Conn // the writer, in the rewriting transaction
	cat    *Catalog  // the target's
	jobs   []applyJob
	masked map[string]bool // qualified root names of rewritten tables
	// statRels are the statistics catalogs (pg_statistic, and
	// pg_statistic_ext_data where it exists).
	statRels []string
}

// applyJob rewrites one table or partition.
type applyJob struct {
	leaf, into *Table // into: the partitioned root for a partition
	tm         *TableMasker
	cols       []string // read from the snapshot
	target     []string // written
}

// applySessionSetup makes text COPY unambiguous, as the copier's sessions
// do: what the transforms parse, and what a clone masked in the stream saw.
const applySessionSetup = "SET datestyle = ISO; SET intervalstyle = postgres; SET extra_float_digits = 3; SET timezone = 'UTC'; SET client_encoding = 'UTF8'"

func (a *applier) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(a.dsn)
	if err != nil {
		return nil, fmt.Errorf("mask apply: read connection string %s: %w", pgdsn.Redact(a.dsn), err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "dbtwin mask apply"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("mask apply: connect to %s: %w", a.desc, err)
	}
	if err := execSQL(ctx, conn, applySessionSetup); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("mask apply: set up session on %s: %w", a.desc, err)
	}
	return conn, nil
}

func execSQL(ctx context.Context, conn *pgx.Conn, sql string) error {
	_, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	return err
}

// prepare refuses what is not a sandbox, checks the role and the plan
// against the target's catalog, and lists the tables to rewrite.
func (a *applier) prepare(ctx context.Context) error {
	ok, why, err := isSandbox(ctx, a.w, a.o.StateDir)
	if err != nil {
		return fmt.Errorf("mask apply on %s: %w", a.desc, err)
	}
	if !ok {
		return fmt.Errorf("mask apply on %s: %w (%s)", a.desc, ErrNotSandbox, why)
	}
	a.rep.Sandbox = why
	var super bool
	if err := a.w.QueryRow(ctx, "SELECT pg_catalog.current_database(), pg_catalog.current_setting('is_superuser') = 'on'").Scan(&a.rep.Database, &super); err != nil {
		return fmt.Errorf("mask apply on %s: %w", a.desc, err)
	}
	if !super {
		return fmt.Errorf("mask apply on %s: connect as a superuser of the sandbox (session_replication_role, VACUUM FULL of every table and of pg_statistic need one)", a.desc)
	}
	if a.cat, err = LoadCatalog(ctx, a.w); err != nil {
		return fmt.Errorf("mask apply on %s: %w", a.desc, err)
	}
	if err := checkCoverage(a.plan, a.cat); err != nil {
		return fmt.Errorf("mask apply on %s: %w", a.desc, err)
	}
	a.statRels = []string{"pg_catalog.pg_statistic"}
	var ext bool
	if err := a.w.QueryRow(ctx, "SELECT pg_catalog.to_regclass('pg_catalog.pg_statistic_ext_data') IS NOT NULL").Scan(&ext); err != nil {
		return fmt.Errorf("mask apply on %s: %w", a.desc, err)
	}
	if ext {
		a.statRels = append(a.statRels, "pg_catalog.pg_statistic_ext_data")
	}
	a.masked = map[string]bool{}
	for _, t := range a.cat.Tables {
		if t.Partitioned {
			continue
		}
		tm := a.plan.Table(t.QualifiedName())
		if tm == nil {
			continue
		}
		cols := tm.Columns()
		j := applyJob{leaf: t, into: t, tm: tm, cols: cols, target: tm.TargetColumns(cols)}
		if t.Parent != "" {
			j.into = a.cat.Root(t)
		}
		a.jobs = append(a.jobs, j)
		a.masked[a.cat.Root(t).QualifiedName()] = true
	}
	return nil
}

// checkCoverage fails closed when the target has a table or column the
// plan's catalog lacks (the plan would leave it unmasked) or types differ.
func checkCoverage(plan *Plan, cat *Catalog) error {
	perr := &PlanError{file: plan.rules.File}
	for _, t := range cat.Tables {
		pt := plan.cat.Table(t.QualifiedName())
		if pt == nil {
			perr.Problems = append(perr.Problems, fmt.Sprintf("%s: table %s of the target is not in the plan's catalog: build the plan from the target's own catalog", plan.rules.File, t.QualifiedName()))
			continue
		}
		if t.Parent != "" {
			continue // partitions have their root's columns
		}
		for _, c := range t.Columns {
			pc := pt.Column(c.Name)
			switch {
			case pc == nil || plan.dec[pt.QualifiedName()][c.Name] == nil:
				perr.Undecided = append(perr.Undecided, t.QualifiedName()+"."+c.Name)
			case pc.Type != c.Type || pc.MaxLen != c.MaxLen || pc.Generated != c.Generated:
				perr.Problems = append(perr.Problems, fmt.Sprintf("%s: column %s.%s is %s in the target but %s in the plan's catalog: build the plan from the target's own catalog", plan.rules.File, t.QualifiedName(), c.Name, c.Display, pc.Display))
			}
		}
		for _, pc := range pt.Columns {
			if t.Column(pc.Name) == nil {
				perr.Problems = append(perr.Problems, fmt.Sprintf("%s: column %s.%s of the plan's catalog is not in the target: build the plan from the target's own catalog", plan.rules.File, t.QualifiedName(), pc.Name))
			}
		}
	}
	if len(perr.Problems) > 0 || len(perr.Undecided) > 0 {
		return perr
	}
	return nil
}

// rewrite is the transaction: everything in it commits together or not at
// all.
func (a *applier) rewrite(ctx context.Context) error {
	if len(a.jobs) == 0 {
		return nil
	}
	if err := execSQL(ctx, a.w, "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL session_replication_role = replica"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	idents := make([]string, 0, len(a.jobs))
	seen := map[string]bool{}
	for _, j := range a.jobs {
		for _, t := range []*Table{j.leaf, j.into} {
			if id := ident(t); !seen[id] {
				seen[id] = true
				idents = append(idents, id)
			}
		}
	}
	for batch := range slices.Chunk(idents, 500) {
		if err := execSQL(ctx, a.w, "LOCK TABLE "+strings.Join(batch, ", ")+" IN EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("lock tables: %w", err)
		}
	}
	if err := a.checkTriggers(ctx, idents); err != nil {
		return err
	}

	// The snapshot: after the locks (no one else writes these tables any
	// more), before the first delete.
	r, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer r.Close(context.WithoutCancel(ctx))
	if err := execSQL(ctx, r, "SET row_security = off; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1"); err != nil {
		return fmt.Errorf("open the snapshot: %w", err)
	}

	deleted := make([]int64, len(a.jobs))
	for i, j := range a.jobs {
		tag, err := a.w.PgConn().Exec(ctx, "DELETE FROM ONLY "+ident(j.leaf)).ReadAll()
		if err != nil {
			return fmt.Errorf("delete the rows of %s: %w", j.leaf.QualifiedName(), err)
		}
		deleted[i] = tag[0].CommandTag.RowsAffected()
	}
	for i, j := range a.jobs {
		start := a.o.Now()
		src := fmt.Sprintf("COPY %s (%s) TO STDOUT", ident(j.leaf), identList(j.cols))
		dst := fmt.Sprintf("COPY %s (%s) FROM STDIN", ident(j.into), identList(j.target))
		rows, err := streamMasked(ctx, r.PgConn(), a.w.PgConn(), src, dst, j.tm, j.cols)
		if err != nil {
			return fmt.Errorf("rewrite %s: %w", j.leaf.QualifiedName(), err)
		}
		if rows != deleted[i] {
			return fmt.Errorf("rewrite %s: deleted %d rows but wrote %d: the table changed during mask apply", j.leaf.QualifiedName(), deleted[i], rows)
		}
		at := AppliedTable{Table: j.leaf.QualifiedName(), Rows: rows, Duration: a.o.Now().Sub(start)}
		a.rep.Tables = append(a.rep.Tables, at)
		a.rep.Rows += rows
		a.o.Logger.Debug("table masked in place", "table", at.Table, "rows", at.Rows, "duration", at.Duration)
	}
	if err := a.refreshMatviews(ctx); err != nil {
		return err
	}
	if err := a.checkConstraints(ctx, r); err != nil {
		return err
	}
	// Statistics hold sampled values (most common values, histograms) of
	// the unmasked rows: delete them all; ANALYZE recomputes them after the
	// commit, and VACUUM FULL purges the deleted rows.
	for _, rel := range a.statRels {
		if err := execSQL(ctx, a.w, "DELETE FROM "+rel); err != nil {
			return fmt.Errorf("delete the statistics of the unmasked rows: %w", err)
		}
	}
	// End the snapshot before the commit: VACUUM FULL must not wait for it.
	if err := execSQL(ctx, r, "ROLLBACK"); err != nil {
		return fmt.Errorf("close the snapshot: %w", err)
	}
	if err := execSQL(ctx, a.w, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// checkTriggers refuses triggers and rules that fire although the session
// is in replica mode: they would see (and could copy) unmasked rows.
func (a *applier) checkTriggers(ctx context.Context, idents []string) error {
	rows, err := a.w.Query(ctx, `
SELECT t.tgrelid::regclass::text, 'trigger ' || pg_catalog.quote_ident(t.tgname)
  FROM pg_catalog.pg_trigger t
 WHERE t.tgenabled IN ('A', 'R') AND t.tgrelid IN (SELECT pg_catalog.unnest($1::text[])::regclass)
UNION ALL
SELECT r.ev_class::regclass::text, 'rule ' || pg_catalog.quote_ident(r.rulename)
  FROM pg_catalog.pg_rewrite r
 WHERE r.ev_enabled IN ('A', 'R') AND r.rulename <> '_RETURN' AND r.ev_class IN (SELECT pg_catalog.unnest($1::text[])::regclass)
 ORDER BY 1, 2`, idents)
	if err != nil {
		return fmt.Errorf("list triggers: %w", err)
	}
	var found []string
	for rows.Next() {
		var table, what string
		if err := rows.Scan(&table, &what); err != nil {
			rows.Close()
			return fmt.Errorf("list triggers: %w", err)
		}
		found = append(found, what+" on "+table)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list triggers: %w", err)
	}
	if len(found) > 0 {
		return fmt.Errorf("%s fire(s) even in replica mode (ENABLE ALWAYS or ENABLE REPLICA) and would see the unmasked rows: disable them on the sandbox first (ALTER TABLE … DISABLE TRIGGER / DISABLE RULE)", strings.Join(found, ", "))
	}
	return nil
}

// refreshMatviews refreshes every populated materialized view inside the
// transaction. One that reads another must wait for it: each failure is
// rolled back to a savepoint and retried after the others, until a round
// makes no progress.
func (a *applier) refreshMatviews(ctx context.Context) error {
	rows, err := a.w.Query(ctx, `SELECT pg_catalog.quote_ident(schemaname) || '.' || pg_catalog.quote_ident(matviewname), schemaname || '.' || matviewname
		FROM pg_catalog.pg_matviews WHERE ispopulated ORDER BY 2`)
	if err != nil {
		return fmt.Errorf("list materialized views: %w", err)
	}
	type mv struct{ ident, name string }
	pending, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mv, error) {
		var m mv
		err := r.Scan(&m.ident, &m.name)
		return m, err
	})
	if err != nil {
		return fmt.Errorf("list materialized views: %w", err)
	}
	for len(pending) > 0 {
		var failed []mv
		var lastErr error
		for _, m := range pending {
			err := execSQL(ctx, a.w, "SAVEPOINT dbtwin_refresh; REFRESH MATERIALIZED VIEW "+m.ident+"; RELEASE SAVEPOINT dbtwin_refresh")
			if err == nil {
				a.rep.MatViews = append(a.rep.MatViews, m.name)
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if rerr := execSQL(ctx, a.w, "ROLLBACK TO SAVEPOINT dbtwin_refresh; RELEASE SAVEPOINT dbtwin_refresh"); rerr != nil {
				return fmt.Errorf("refresh materialized view %s: %w", m.name, err)
			}
			failed = append(failed, m)
			lastErr = fmt.Errorf("refresh materialized view %s: %w", m.name, err)
		}
		if len(failed) == len(pending) {
			return lastErr
		}
		pending = failed
	}
	slices.Sort(a.rep.MatViews)
	return nil
}

// checkConstraints runs Audit's key and foreign-key checks over the masked
// rows (the writer sees them, uncommitted), restricted to what touches a
// rewritten table; the snapshot plays the source for declared references,
// whose orphans in the original rows are not the masking's doing.
func (a *applier) checkConstraints(ctx context.Context, snapshot *pgx.Conn) error {
	var tables []*Table
	for _, t := range a.cat.Tables {
		c := *t
		if !a.masked[a.cat.Root(t).QualifiedName()] {
			c.PrimaryKey, c.Uniques, c.ForeignKeys = nil, nil, nil
			for _, fk := range t.ForeignKeys {
				if rt := a.cat.Table(fk.RefTable); rt != nil && a.masked[a.cat.Root(rt).QualifiedName()] {
					c.ForeignKeys = append(c.ForeignKeys, fk)
				}
			}
		}
		tables = append(tables, &c)
	}
	rules := *a.plan.rules
	rules.References = nil
	for _, r := range a.plan.rules.References {
		ft, tt := a.cat.Table(r.Table), a.cat.Table(r.RefTable)
		if ft != nil && tt != nil && (a.masked[a.cat.Root(ft).QualifiedName()] || a.masked[a.cat.Root(tt).QualifiedName()]) {
			rules.References = append(rules.References, r)
		}
	}
	audit := &AuditReport{}
	if err := auditConstraints(ctx, snapshot, a.w, &Plan{cat: NewCatalog(tables), rules: &rules}, false, audit); err != nil {
		return fmt.Errorf("check constraints: %w", err)
	}
	a.rep.Constraints = audit.Constraints
	var bad []string
	for _, c := range audit.Constraints {
		if c.Violations > 0 {
			bad = append(bad, fmt.Sprintf("%s %s on %s: %d violation(s)", c.Kind, c.Name, c.Table, c.Violations))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the masked rows break %d constraint(s) (fix the rules: keys and the columns that reference them need the same bijective transform):\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
	return nil
}

// cleanup runs after the commit: VACUUM FULL of every rewritten table,
// then ANALYZE of the database (the statistics were deleted with the
// rewrite), then VACUUM FULL of the statistics catalogs.
func (a *applier) cleanup(ctx context.Context) error {
	if len(a.jobs) == 0 {
		return nil
	}
	start := a.o.Now()
	for _, j := range a.jobs {
		if err := execSQL(ctx, a.w, "VACUUM (FULL) "+ident(j.leaf)); err != nil {
			return fmt.Errorf("masked rows are committed, but VACUUM FULL %s failed, so its files still hold the old, unmasked row versions: run VACUUM FULL on it: %w", j.leaf.QualifiedName(), err)
		}
	}
	a.rep.Vacuum = a.o.Now().Sub(start)
	start = a.o.Now()
	if err := execSQL(ctx, a.w, "ANALYZE"); err != nil {
		return fmt.Errorf("masked rows are committed, but ANALYZE failed (the planner has no statistics until it runs): run ANALYZE: %w", err)
	}
	for _, rel := range a.statRels {
		if err := execSQL(ctx, a.w, "VACUUM (FULL) "+rel); err != nil {
			return fmt.Errorf("masked rows are committed, but VACUUM FULL %s failed, so its dead rows may still hold statistics (common values) of the unmasked rows: run VACUUM FULL %s: %w", rel, rel, err)
		}
	}
	a.rep.Analyze = a.o.Now().Sub(start)
	return nil
}

func ident(t *Table) string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }

func identList(cols []string) string { return strings.Join(quoteIdents(cols, ""), ", ") }

// errStreamStopped is how one side of a stream tells the other to stop.
var errStreamStopped = errors.New("stream stopped")

// streamMasked runs srcSQL (COPY … TO STDOUT) on src and dstSQL (COPY …
// FROM STDIN) on dst at the same time, with FilterCopyText between them,
// joined by in-memory pipes. It returns the rows loaded.
func streamMasked(ctx context.Context, src, dst *pgconn.PgConn, srcSQL, dstSQL string, tm *TableMasker, cols []string) (int64, error) {
	pr, pw := io.Pipe() // source → filter
	fr, fw := io.Pipe() // filter → target
	stop := context.AfterFunc(ctx, func() {
		for _, c := range []interface{ CloseWithError(error) error }{pr, pw, fr, fw} {
			c.CloseWithError(ctx.Err())
		}
	})
	defer stop()

	var srcErr, filterErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		bw := bufio.NewWriterSize(pw, 256<<10)
		_, err := src.CopyTo(ctx, bw, srcSQL)
		if err == nil {
			err = bw.Flush()
		}
		srcErr = err
		pw.CloseWithError(err) // nil: the filter sees EOF
	}()
	go func() {
		defer wg.Done()
		bw := bufio.NewWriterSize(fw, 256<<10)
		_, err := FilterCopyText(ctx, bw, pr, tm, cols)
		if err == nil {
			err = bw.Flush()
		}
		filterErr = err
		pr.CloseWithError(errStreamStopped)
		fw.CloseWithError(err)
	}()
	tag, dstErr := dst.CopyFrom(ctx, fr, dstSQL)
	fr.CloseWithError(errStreamStopped)
	pr.CloseWithError(errStreamStopped)
	wg.Wait()

	switch {
	case ctx.Err() != nil:
		return 0, ctx.Err()
	case filterErr != nil && !errors.Is(filterErr, errStreamStopped):
		return 0, filterErr
	case srcErr != nil && !errors.Is(srcErr, errStreamStopped):
		return 0, fmt.Errorf("copy out of the snapshot: %w", srcErr)
	case dstErr != nil:
		return 0, fmt.Errorf("copy in: %w", dstErr)
	}
	return tag.RowsAffected(), nil
}
