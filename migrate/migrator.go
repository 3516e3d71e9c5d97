package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/jackc/pgx/v5"
)

// Config says what to migrate and with what.
type Config struct {
	// DSN is the database to migrate (the candidate clone). It is never
	// logged or reported unredacted.
	DSN string
	// Set holds the migrations to apply natively (from Discover).
	Set *Set
	// Command runs an external migrator instead of Set.
	Command *Command
}

// Option configures a Migrator.
type Option func(*options) error

type options struct {
	log           *slog.Logger
	interval      time.Duration
	exactBytes    int64
	assumeUpTo    string
	ignoreHistory bool
	historyTable  string
}

// DefaultSampleInterval is how often the lock watcher samples pg_locks.
const DefaultSampleInterval = 25 * time.Millisecond

// DefaultExactCountBytes is the largest table (all partitions, on disk)
// whose rows are counted with count(*); bigger ones use the estimate.
const DefaultExactCountBytes = 64 << 20

// WithLogger sends progress (per migration at Info, per statement at
// Debug) to log. The default discards it.
func WithLogger(log *slog.Logger) Option {
	return func(o *options) error {
		if log == nil {
			return errors.New("WithLogger: nil logger")
		}
		o.log = log
		return nil
	}
}

// WithSampleInterval sets how often the watcher samples pg_locks while a
// statement runs: more than 0 and at most 100 ms.
func WithSampleInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 || d > 100*time.Millisecond {
			return fmt.Errorf("WithSampleInterval: %v is not in (0, 100ms]", d)
		}
		o.interval = d
		return nil
	}
}

// WithExactCountBytes sets the size above which a table's rows are
// estimated (pg_class.reltuples) instead of counted; 0 estimates every
// table, which makes the probes nearly free.
func WithExactCountBytes(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("WithExactCountBytes: %d is negative", n)
		}
		o.exactBytes = n
		return nil
	}
}

// WithAssumeAppliedUpTo treats every migration up to and including version
// as applied, on top of the tool's history: how a candidate continues from
// a baseline made with ApplyUpTo (dbtwin does not write history tables).
func WithAssumeAppliedUpTo(version string) Option {
	return func(o *options) error {
		if version == "" {
			return errors.New("WithAssumeAppliedUpTo: empty version")
		}
		o.assumeUpTo = version
		return nil
	}
}

// WithIgnoreHistory applies every migration, whatever the tool's history
// table says.
func WithIgnoreHistory() Option {
	return func(o *options) error { o.ignoreHistory = true; return nil }
}

// WithHistoryTable names the tool's history table when it is not the
// default (goose_db_version, schema_migrations, flyway_schema_history,
// atlas_schema_revisions.atlas_schema_revisions), e.g. golang-migrate's
// x-migrations-table.
func WithHistoryTable(name string) Option {
	return func(o *options) error {
		if name == "" {
			return errors.New("WithHistoryTable: empty name")
		}
		o.historyTable = name
		return nil
	}
}

// Migrator applies migrations to one database and measures them.
type Migrator struct {
	cfg Config
	o   options
}

// New checks cfg and the options. It does not connect.
func New(cfg Config, opts ...Option) (*Migrator, error) {
	o := options{log: slog.New(slog.DiscardHandler), interval: DefaultSampleInterval, exactBytes: DefaultExactCountBytes}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("configure migrator: %w", err)
		}
	}
	switch {
	case cfg.DSN == "":
		return nil, errors.New("configure migrator: no DSN")
	case cfg.Set == nil && cfg.Command == nil:
		return nil, errors.New("configure migrator: neither a migration set nor a command")
	case cfg.Set != nil && cfg.Command != nil:
		return nil, errors.New("configure migrator: both a migration set and a command; choose one")
	}
	if cfg.Command != nil {
		if err := cfg.Command.validate(); err != nil {
			return nil, fmt.Errorf("configure migrator: %w", err)
		}
	}
	if o.assumeUpTo != "" && cfg.Set != nil && cfg.Set.Index(o.assumeUpTo) < 0 {
		return nil, fmt.Errorf("configure migrator: WithAssumeAppliedUpTo: no migration has version %s in %s", o.assumeUpTo, cfg.Set.Dir)
	}
	return &Migrator{cfg: cfg, o: o}, nil
}

// Plan is what a Migrator would do.
type Plan struct {
	// History is the tool's history table read, "" if there was none.
	History string
	// Applied are the versions already applied, in order.
	Applied []string
	// Pending are the migrations to apply, in order.
	Pending []Migration
}

// Plan reads the tool's history table and returns the pending migrations.
func (m *Migrator) Plan(ctx context.Context) (*Plan, error) {
	if m.cfg.Set == nil {
		return nil, errors.New("plan migrations: an external command has no plan")
	}
	conn, err := pgx.Connect(ctx, m.cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", pgdsn.Describe(m.cfg.DSN), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return m.plan(ctx, conn)
}

func (m *Migrator) plan(ctx context.Context, conn *pgx.Conn) (*Plan, error) {
	set := m.cfg.Set
	h := history{applied: map[string]bool{}}
	if !m.o.ignoreHistory {
		var err error
		if h, err = readHistory(ctx, conn, set.Format, m.o.historyTable); err != nil {
			return nil, err
		}
	}
	p := &Plan{History: h.table}
	assumed := -1
	if m.o.assumeUpTo != "" {
		assumed = set.Index(m.o.assumeUpTo)
	}
	for i, mig := range set.Migrations {
		if (!mig.Repeatable && i <= assumed) || h.isApplied(mig) {
			if !mig.Repeatable {
				p.Applied = append(p.Applied, mig.Version)
			}
			continue
		}
		p.Pending = append(p.Pending, mig)
	}
	return p, nil
}

// Apply applies every pending migration and reports what each statement
// did. On failure it returns the report so far and an *ApplyError.
func (m *Migrator) Apply(ctx context.Context) (*Report, error) {
	return m.apply(ctx, "")
}

// ApplyUpTo applies the pending migrations up to and including version
// (Flyway repeatables too, as flyway -target does). With an external
// command, "{{version}}" in its argv or environment receives version.
func (m *Migrator) ApplyUpTo(ctx context.Context, version string) (*Report, error) {
	if version == "" {
		return nil, errors.New("apply migrations up to a version: empty version")
	}
	return m.apply(ctx, version)
}

func (m *Migrator) apply(ctx context.Context, upTo string) (*Report, error) {
	if m.cfg.Command != nil {
		return m.runCommand(ctx, upTo)
	}
	set := m.cfg.Set
	limit := len(set.Migrations) - 1
	if upTo != "" {
		if limit = set.Index(upTo); limit < 0 {
			return nil, fmt.Errorf("apply migrations up to %s: no migration has that version in %s", upTo, set.Dir)
		}
	}
	conn, err := pgx.Connect(ctx, m.cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", pgdsn.Describe(m.cfg.DSN), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	plan, err := m.plan(ctx, conn)
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Format:         set.Format,
		Source:         set.Dir,
		Target:         pgdsn.Describe(m.cfg.DSN),
		History:        plan.History,
		Skipped:        plan.Applied,
		UpTo:           upTo,
		SampleInterval: m.o.interval,
		Migrations:     []MigrationResult{},
	}
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&rep.ServerVersion); err != nil {
		return nil, fmt.Errorf("read server version of %s: %w", rep.Target, err)
	}
	var todo []Migration
	for _, mig := range plan.Pending {
		if mig.Repeatable || set.Index(mig.Version) <= limit {
			todo = append(todo, mig)
		}
	}
	if len(todo) == 0 {
		m.o.log.Info("no pending migrations", "dir", set.Dir, "skipped", len(plan.Applied))
		return rep, nil
	}
	known, err := userRelations(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("list relations of %s: %w", rep.Target, err)
	}
	w, err := startWatcher(ctx, m.cfg.DSN, []uint32{conn.PgConn().PID()}, false, m.o.interval, m.o.log)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	r := &run{m: m, conn: conn, w: w, major: rep.ServerVersion / 10000, known: known}
	for _, mig := range todo {
		res, aerr := r.migration(ctx, mig)
		rep.Duration += res.Duration
		if aerr != nil {
			aerr.Applied = append([]MigrationResult(nil), rep.Migrations...)
			rep.Migrations = append(rep.Migrations, res)
			return rep, aerr
		}
		rep.Migrations = append(rep.Migrations, res)
	}
	return rep, nil
}

// run is one Apply in progress.
type run struct {
	m     *Migrator
	conn  *pgx.Conn
	w     *watcher
	major int
	known map[uint32]relInfo
}

// migration applies one migration with metrics.
func (r *run) migration(ctx context.Context, mig Migration) (res MigrationResult, aerr *ApplyError) {
	log := r.m.o.log.With("version", mig.Version, "file", mig.File)
	tx := !mig.NoTransaction
	res = MigrationResult{Version: mig.Version, Name: mig.Name, File: mig.File, Transactional: tx, Statements: []StatementResult{}}
	tr := newLockTracker()
	r.w.track(tr)
	defer r.w.track(nil)
	defer func() {
		locks := tr.result(r.known)
		for i := range res.Statements {
			res.Statements[i].Locks = locks[i]
		}
		if aerr != nil {
			aerr.Failed = res
		}
	}()
	log.Info("apply migration", "name", mig.Name, "transaction", tx, "statements", len(mig.Up))

	exec := func(sql string) (time.Duration, error) {
		t0 := time.Now()
		_, err := r.conn.Exec(ctx, sql)
		return time.Since(t0), err
	}
	fail := func(i int, st Statement, err error) *ApplyError {
		code, pos := sqlState(err)
		line := st.Line
		if pos > 0 {
			line = st.Line + lineOfPosition(st.SQL, pos) - 1
		}
		rolledBack := false
		if s := r.conn.PgConn().TxStatus(); s == 'T' || s == 'E' {
			d, rerr := exec("ROLLBACK")
			tr.txEnd(i, d)
			res.Duration += d
			rolledBack = rerr == nil && tx
		}
		res.Error = err.Error()
		log.Warn("migration failed", "line", line, "sqlstate", code, "err", err)
		return &ApplyError{Failed: res, File: mig.File, Line: line, SQLState: code, RolledBack: rolledBack, Err: err}
	}

	if tx {
		d, err := exec("BEGIN")
		if err != nil {
			return res, &ApplyError{Failed: res, File: mig.File, Err: fmt.Errorf("begin transaction: %w", err)}
		}
		res.Duration += d
	}
	for i, st := range mig.Up {
		info := analyze(st.SQL, r.major)
		sr := StatementResult{Line: st.Line, SQL: oneLine(st.SQL, 200)}
		targets := make([]countTarget, len(info.tables))
		for j, t := range info.tables {
			targets[j].ident = t
		}
		var before filenodes
		if err := probe(ctx, r.conn, func() error {
			var err error
			if before, err = snapshotFilenodes(ctx, r.conn); err != nil {
				return err
			}
			if err := resolveTargets(ctx, r.conn, targets); err != nil {
				return err
			}
			sr.RowsBefore, sr.RowsEstimated, err = countRows(ctx, r.conn, targets, r.m.o.exactBytes)
			return err
		}); err != nil {
			log.Debug("probe before statement", "line", st.Line, "err", err)
		}
		// A statement of a migration without a transaction gets one of
		// its own when PostgreSQL allows it: the same as autocommit for
		// visibility and locking, but its locks can be read before COMMIT.
		wrap := !tx && !info.refuses && !info.txControl && r.conn.PgConn().TxStatus() == 'I'
		if wrap {
			d, err := exec("BEGIN")
			res.Duration += d
			if err != nil {
				res.Statements = append(res.Statements, sr)
				return res, fail(i, st, err)
			}
		}
		tr.begin(i)
		d, err := exec(st.SQL)
		tr.end(i, d)
		sr.Duration = d
		res.Duration += d
		log.Debug("statement", "line", st.Line, "duration", d, "err", err)
		if err != nil {
			sr.Error = err.Error()
			sr.SQLState, _ = sqlState(err)
			res.Statements = append(res.Statements, sr)
			return res, fail(i, st, err)
		}
		if err := probe(ctx, r.conn, func() error {
			if r.conn.PgConn().TxStatus() != 'T' {
				return nil
			}
			locks, err := readLocks(ctx, r.conn, "l.pid = pg_backend_pid()")
			if err != nil {
				return err
			}
			tr.own(i, locks)
			return nil
		}); err != nil {
			log.Debug("read own locks", "line", st.Line, "err", err)
		}
		if wrap {
			d, err := exec("COMMIT")
			res.Duration += d
			tr.txEnd(i, d)
			if err != nil {
				sr.Error = err.Error()
				sr.SQLState, _ = sqlState(err)
				res.Statements = append(res.Statements, sr)
				return res, fail(i, st, err)
			}
		} else if r.conn.PgConn().TxStatus() == 'I' {
			tr.txEnd(i, 0) // autocommitted, or the file's own COMMIT
		}
		if err := probe(ctx, r.conn, func() error {
			after, err := snapshotFilenodes(ctx, r.conn)
			if err != nil {
				return err
			}
			sr.Rewritten = rewrittenTables(before, after)
			if err := resolveTargets(ctx, r.conn, targets); err != nil {
				return err
			}
			var est []string
			sr.RowsAfter, est, err = countRows(ctx, r.conn, targets, r.m.o.exactBytes)
			sr.RowsEstimated = mergeSorted(sr.RowsEstimated, est)
			return err
		}); err != nil {
			log.Debug("probe after statement", "line", st.Line, "err", err)
		}
		res.Statements = append(res.Statements, sr)
	}
	if tx {
		last := len(mig.Up) - 1
		d, err := exec("COMMIT")
		res.Duration += d
		tr.txEnd(max(last, 0), d)
		if err != nil {
			st := Statement{Line: 0}
			if last >= 0 {
				st = mig.Up[last]
			}
			return res, fail(last, st, fmt.Errorf("commit: %w", err))
		}
	}
	log.Info("migration applied", "duration", res.Duration)
	return res, nil
}

func mergeSorted(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
