package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/fixtures"
	"github.com/dbtwin/dbtwin/internal/termtable"
	"github.com/jackc/pgx/v5"
)

// DemoConfig says how big a demo to run and where.
type DemoConfig struct {
	// Tenants, Scale and Seed size the fixtures (see fixtures.Config).
	Tenants int
	Scale   float64
	Seed    int64
	// Jobs is the number of parallel copy workers per clone.
	Jobs int
	// Keep leaves the sandbox running at the end (for a look with psql).
	Keep bool
	// Local configures the embedded sandbox (binaries, state directory).
	Local local.Config
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
	// Progress, if set, is given to every clone (progress bars).
	Progress clone.Progress
}

// DemoReport is what the demo did, per tenant.
type DemoReport struct {
	// Sandbox is the name of the embedded cluster it ran in.
	Sandbox string
	// SandboxDSN is how to reach it (only when Keep was set).
	SandboxDSN string
	// PostgresVersion is the sandbox's PostgreSQL major version.
	PostgresVersion int
	// Generate is how long generating every tenant took.
	Generate time.Duration
	// Tenants has one entry per tenant, in plan order.
	Tenants []DemoTenant
}

// DemoTenant is one tenant's clone and fan-out.
type DemoTenant struct {
	Name     string
	Shape    string
	Source   string // the generated database
	Golden   string // the clone
	Tables   int
	Rows     int64
	Bytes    int64 // size of the golden clone on disk
	Copied   int64 // COPY stream bytes the clone moved
	Clone    time.Duration
	FanOut   time.Duration // baseline + candidate + control, by template copy
	Copies   []string      // the fan-out databases
	Verified bool          // every table's row count matches the source
}

// Demo runs the demo pipeline: start an embedded sandbox, generate the
// fixture tenants, clone each one into a golden copy, fan each golden copy
// out into baseline, candidate and control by template copy, and check the
// clone's row counts against the source. The sandbox is torn down at the end
// (also on error or cancellation) unless cfg.Keep.
func Demo(ctx context.Context, cfg DemoConfig) (_ *DemoReport, err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fcfg := fixtures.Config{Tenants: cfg.Tenants, Scale: cfg.Scale, Seed: cfg.Seed, Logger: log}
	if err := fcfg.Validate(); err != nil {
		return nil, err
	}
	lcfg := cfg.Local
	lcfg.Logger = log
	lcfg.Keep = cfg.Keep
	sb, err := local.Start(ctx, lcfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !cfg.Keep || err != nil {
			if cerr := sb.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	rep := &DemoReport{Sandbox: sb.Name(), PostgresVersion: sb.Major()}
	if cfg.Keep {
		rep.SandboxDSN = sb.DSN("postgres")
	}

	start := time.Now()
	sums, err := fixtures.Generate(ctx, sb.DSN("postgres"), fcfg)
	if err != nil {
		return nil, fmt.Errorf("generate fixtures: %w", err)
	}
	rep.Generate = time.Since(start)

	for _, s := range sums {
		t := DemoTenant{Name: s.Tenant.Name, Shape: s.Tenant.Shape, Source: s.Tenant.Database, Golden: s.Tenant.Name + "_golden"}
		log.Info("cloning tenant", "tenant", t.Name, "from", t.Source, "to", t.Golden)
		start := time.Now()
		res, err := clone.Clone(ctx, sb.DSN(t.Source), sb.DSN(t.Golden), clone.Options{
			Jobs: cfg.Jobs, BinDir: sb.BinDir(), Logger: log, Progress: cfg.Progress,
		})
		if err != nil {
			return nil, fmt.Errorf("clone tenant %s: %w", t.Name, err)
		}
		t.Clone = time.Since(start)
		t.Tables, t.Rows, t.Copied = len(res.Tables), res.Rows, res.Bytes

		start = time.Now()
		for _, role := range []string{"baseline", "candidate", "control"} {
			db := t.Name + "_" + role
			if err := sb.CreateDatabaseFromTemplate(ctx, db, t.Golden); err != nil {
				return nil, fmt.Errorf("fan out tenant %s: %w", t.Name, err)
			}
			t.Copies = append(t.Copies, db)
		}
		t.FanOut = time.Since(start)

		if t.Bytes, err = databaseSize(ctx, sb.DSN(t.Golden)); err != nil {
			return nil, err
		}
		want, err := RowCounts(ctx, sb.DSN(t.Source))
		if err != nil {
			return nil, err
		}
		got, err := RowCounts(ctx, sb.DSN(t.Golden))
		if err != nil {
			return nil, err
		}
		if diff := DiffCounts(want, got); diff != "" {
			return nil, fmt.Errorf("clone of tenant %s differs from its source: %s", t.Name, diff)
		}
		t.Verified = true
		rep.Tenants = append(rep.Tenants, t)
	}
	return rep, nil
}

// WriteText renders the report as a terminal table and a few lines.
func (r *DemoReport) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "dbtwin demo in sandbox %s (PostgreSQL %d); fixtures generated in %s\n\n", r.Sandbox, r.PostgresVersion, r.Generate.Round(time.Millisecond))
	t := termtable.New(w, "TENANT", "SHAPE", "TABLES", "ROWS", "SIZE", "CLONE", "COPY MiB/S", "FAN-OUT (3 COPIES)", "CHECK")
	var rows, bytes int64
	var cloneTime time.Duration
	for _, x := range r.Tenants {
		rows += x.Rows
		bytes += x.Bytes
		cloneTime += x.Clone
		check := "row counts match"
		if !x.Verified {
			check = "NOT VERIFIED"
		}
		if err := t.Append(x.Name, x.Shape, fmt.Sprint(x.Tables), fmt.Sprint(x.Rows), mib(x.Bytes),
			x.Clone.Round(time.Millisecond).String(), fmt.Sprintf("%.0f", float64(x.Copied)/(1<<20)/x.Clone.Seconds()),
			x.FanOut.Round(time.Millisecond).String(), check); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ncloned %d tenants: %d rows, %s in %s\n", len(r.Tenants), rows, mib(bytes), cloneTime.Round(time.Millisecond))
	fmt.Fprintln(w, "each golden clone was fanned out into baseline, candidate and control by template copy.")
	fmt.Fprintln(w, "next stages (masking, migrations, replay, comparison, reports) join this demo as they land.")
	if r.SandboxDSN != "" {
		fmt.Fprintf(w, "\nthe sandbox is still up: psql %q\nremove it with: dbtwin sandbox down %s\n", r.SandboxDSN, r.Sandbox)
	}
	return nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func databaseSize(ctx context.Context, dsn string) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, fmt.Errorf("measure database size: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int64
	if err := conn.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n); err != nil {
		return 0, fmt.Errorf("measure database size: %w", err)
	}
	return n, nil
}

// RowCounts returns the exact row count of every ordinary table and leaf
// partition in the database, keyed by schema-qualified name. It reads in a
// READ ONLY transaction, so it is safe on a source.
func RowCounts(ctx context.Context, dsn string) (map[string]int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("count rows: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("count rows: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("count rows: list tables: %w", err)
	}
	var names []pgx.Identifier
	for rows.Next() {
		var s, t string
		if err := rows.Scan(&s, &t); err != nil {
			return nil, err
		}
		names = append(names, pgx.Identifier{s, t})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count rows: list tables: %w", err)
	}
	out := make(map[string]int64, len(names))
	for _, id := range names {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+id.Sanitize()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", id.Sanitize(), err)
		}
		out[id[0]+"."+id[1]] = n
	}
	return out, nil
}

// DiffCounts describes how two RowCounts results differ, or returns "".
func DiffCounts(want, got map[string]int64) string {
	var diffs []string
	for t, n := range want {
		if g, ok := got[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s missing", t))
		} else if g != n {
			diffs = append(diffs, fmt.Sprintf("%s has %d rows, want %d", t, g, n))
		}
	}
	for t := range got {
		if _, ok := want[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s unexpected", t))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	sort.Strings(diffs)
	return fmt.Sprint(diffs)
}
