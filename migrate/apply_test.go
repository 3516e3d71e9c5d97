package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/dbtwin/dbtwin/fixtures"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// applyEnv is one sandbox with the fixture tenant, shared by the apply
// tests; every case migrates its own template copy of tenant_acme.
type applyEnv struct {
	c   *local.Cluster
	ctx context.Context
	n   int
}

func (e *applyEnv) freshDB(t *testing.T) string {
	t.Helper()
	e.n++
	db := fmt.Sprintf("candidate_%d", e.n)
	if err := e.c.CreateDatabaseFromTemplate(e.ctx, db, "tenant_acme"); err != nil {
		t.Fatal(err)
	}
	return e.c.DSN(db)
}

// writeDir writes files into a fresh directory and returns it.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustApply(t *testing.T, ctx context.Context, dsn, dir string, opts ...Option) *Report {
	t.Helper()
	set, err := Discover(dir, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{DSN: dsn, Set: set}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Apply(ctx)
	if err != nil {
		t.Fatalf("apply %s: %v", dir, err)
	}
	return rep
}

func lockOn(sr StatementResult, rel string) (LockHeld, bool) {
	for _, l := range sr.Locks {
		if l.Relation == rel {
			return l, true
		}
	}
	return LockHeld{}, false
}

// queryErr runs sql on dsn and returns its SQLSTATE ("" when it worked).
func queryErr(t *testing.T, ctx context.Context, dsn, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	if err != nil {
		t.Fatal(err)
	}
	return ""
}

func TestApply(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := localtest.Start(t)
	start := time.Now()
	if _, err := fixtures.Generate(ctx, c.DSN("postgres"), fixtures.Config{Tenants: 1, Scale: 0.005, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	t.Logf("fixtures generated in %v", time.Since(start))
	env := &applyEnv{c: c, ctx: ctx}

	t.Run("safe fixtures", func(t *testing.T) {
		dsn := env.freshDB(t)
		rep := mustApply(t, ctx, dsn, "../fixtures/migrations/safe")
		if rep.Format != FormatGoose || len(rep.Migrations) != 6 {
			t.Fatalf("report: format %s, %d migrations", rep.Format, len(rep.Migrations))
		}
		for _, m := range rep.Migrations {
			for _, s := range m.Statements {
				if s.Duration <= 0 {
					t.Errorf("%s:%d: no duration", m.File, s.Line)
				}
				if s.Error != "" {
					t.Errorf("%s:%d: %s", m.File, s.Line, s.Error)
				}
			}
		}
		add := rep.Migrations[0].Statements[1] // ALTER TABLE users ADD COLUMN
		if l, ok := lockOn(add, "users"); !ok || l.Mode != LockAccessExclusive {
			t.Errorf("ADD COLUMN locks = %+v, want ACCESS EXCLUSIVE on users", add.Locks)
		}
		if len(add.Rewritten) != 0 {
			t.Errorf("ADD COLUMN (nullable) rewrote %v", add.Rewritten)
		}
		backfill := rep.Migrations[1].Statements[0]
		if n := backfill.RowsBefore["users"]; n == 0 || backfill.RowsAfter["users"] != n {
			t.Errorf("backfill rows before %v after %v", backfill.RowsBefore, backfill.RowsAfter)
		}
		if l, ok := lockOn(backfill, "users"); !ok || l.Mode != LockRowExclusive {
			t.Errorf("UPDATE locks = %+v, want ROW EXCLUSIVE on users", backfill.Locks)
		}
		if cic := rep.Migrations[2]; cic.Transactional || len(cic.Statements[0].Rewritten) != 0 {
			t.Errorf("CREATE INDEX CONCURRENTLY: transactional %v, rewritten %v", cic.Transactional, cic.Statements[0].Rewritten)
		}
		if l, ok := lockOn(rep.Migrations[5].Statements[1], "user_notification_settings"); !ok || !l.Created {
			t.Errorf("new table lock = %+v, want it marked created", l)
		}
		// The old application still works.
		for _, q := range []string{
			"SELECT id, email, full_name FROM users ORDER BY id LIMIT 5",
			"SELECT id, notes, total FROM orders ORDER BY id LIMIT 5",
		} {
			if code := queryErr(t, ctx, dsn, q); code != "" {
				t.Errorf("%s: SQLSTATE %s after the safe migrations", q, code)
			}
		}
	})

	t.Run("breaking fixtures", func(t *testing.T) {
		dsn := env.freshDB(t)
		rep := mustApply(t, ctx, dsn, "../fixtures/migrations/breaking")
		if rep.Format != FormatGolangMigrate || len(rep.Migrations) != 5 {
			t.Fatalf("report: format %s, %d migrations", rep.Format, len(rep.Migrations))
		}
		typ := rep.Migrations[3].Statements[0] // products.id → bigint
		if !slices.Contains(typ.Rewritten, "products") {
			t.Errorf("type change rewrote %v, want products", typ.Rewritten)
		}
		if l, ok := lockOn(typ, "products"); !ok || l.Mode != LockAccessExclusive {
			t.Errorf("type change locks = %+v", typ.Locks)
		}
		// The old application's queries fail on the candidate.
		for q, want := range map[string]string{
			"SELECT id, email FROM users ORDER BY id LIMIT 5":  "42703",
			"SELECT id, notes FROM orders ORDER BY id LIMIT 5": "42703",
			// email_address: isolates the NOT NULL break from the rename.
			"INSERT INTO users (account_id, email_address, full_name) SELECT id, 'a@b.c', 'A' FROM accounts LIMIT 1": "23502",
		} {
			if code := queryErr(t, ctx, dsn, q); code != want {
				t.Errorf("%s: SQLSTATE %q, want %q", q, code, want)
			}
		}
	})

	metrics := []struct {
		name  string
		files map[string]string
		check func(t *testing.T, rep *Report)
	}{
		{
			name:  "type change rewrites under ACCESS EXCLUSIVE",
			files: map[string]string{"00001_plan_varchar.sql": "-- +goose Up\nALTER TABLE accounts ALTER COLUMN plan TYPE varchar(20);\n"},
			check: func(t *testing.T, rep *Report) {
				s := rep.Migrations[0].Statements[0]
				if l, ok := lockOn(s, "accounts"); !ok || l.Mode != LockAccessExclusive || l.Kind != "table" {
					t.Errorf("locks = %+v, want ACCESS EXCLUSIVE on table accounts", s.Locks)
				}
				if !slices.Equal(s.Rewritten, []string{"accounts"}) {
					t.Errorf("rewritten = %v, want [accounts]", s.Rewritten)
				}
				if s.RowsBefore["accounts"] == 0 || s.RowsAfter["accounts"] != s.RowsBefore["accounts"] {
					t.Errorf("rows before %v after %v", s.RowsBefore, s.RowsAfter)
				}
			},
		},
		{
			name:  "nullable column does not rewrite",
			files: map[string]string{"00001_add.sql": "-- +goose Up\nALTER TABLE accounts ADD COLUMN nickname text;\n"},
			check: func(t *testing.T, rep *Report) {
				s := rep.Migrations[0].Statements[0]
				if len(s.Rewritten) != 0 {
					t.Errorf("rewritten = %v, want none", s.Rewritten)
				}
				if l, ok := lockOn(s, "accounts"); !ok || l.Mode != LockAccessExclusive {
					t.Errorf("locks = %+v", s.Locks)
				}
			},
		},
		{
			name:  "a lock held 300 ms is sampled",
			files: map[string]string{"00001_hold.sql": "-- +goose Up\nLOCK TABLE accounts IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(0.3);\n"},
			check: func(t *testing.T, rep *Report) {
				m := rep.Migrations[0]
				l, ok := lockOn(m.Statements[0], "accounts")
				if !ok || l.Mode != LockAccessExclusive {
					t.Fatalf("LOCK TABLE locks = %+v", m.Statements[0].Locks)
				}
				if l.Held < 200*time.Millisecond {
					t.Errorf("held %v, want ≥ 200ms", l.Held)
				}
				if l.Samples < 2 {
					t.Errorf("seen by %d watcher samples, want several (interval %v)", l.Samples, rep.SampleInterval)
				}
				if m.Statements[1].Duration < 300*time.Millisecond {
					t.Errorf("pg_sleep took %v", m.Statements[1].Duration)
				}
			},
		},
		{
			name:  "row counts before and after",
			files: map[string]string{"00001_delete.sql": "-- +goose Up\nDELETE FROM support_tickets WHERE id % 2 = 0;\n"},
			check: func(t *testing.T, rep *Report) {
				s := rep.Migrations[0].Statements[0]
				b, a := s.RowsBefore["support_tickets"], s.RowsAfter["support_tickets"]
				if b == 0 || a >= b {
					t.Errorf("support_tickets rows %d → %d, want fewer after", b, a)
				}
			},
		},
		{
			name:  "no-transaction migration",
			files: map[string]string{"00001_idx.sql": "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY orders_currency_idx ON orders (currency);\nALTER TABLE orders ADD COLUMN flag boolean;\n"},
			check: func(t *testing.T, rep *Report) {
				m := rep.Migrations[0]
				if m.Transactional {
					t.Error("ran in a transaction")
				}
				// The second statement ran in its own transaction: its
				// lock was read before COMMIT and held only for itself.
				l, ok := lockOn(m.Statements[1], "orders")
				if !ok || l.Mode != LockAccessExclusive || l.Held > m.Statements[1].Duration+time.Second {
					t.Errorf("ALTER locks = %+v", m.Statements[1].Locks)
				}
			},
		},
	}
	for _, tt := range metrics {
		t.Run(tt.name, func(t *testing.T) {
			dsn := env.freshDB(t)
			tt.check(t, mustApply(t, ctx, dsn, writeDir(t, tt.files)))
		})
	}

	t.Run("failure rolls back and says where", func(t *testing.T) {
		dsn := env.freshDB(t)
		dir := writeDir(t, map[string]string{
			"00001_ok.sql":  "-- +goose Up\nALTER TABLE accounts ADD COLUMN first_col text;\n",
			"00002_bad.sql": "-- +goose Up\nALTER TABLE accounts ADD COLUMN second_col text;\n\nSELECT id,\n       no_such_column\nFROM accounts;\n",
		})
		set, err := Discover(dir, FormatAuto)
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(Config{DSN: dsn, Set: set})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := m.Apply(ctx)
		var ae *ApplyError
		if !errors.As(err, &ae) {
			t.Fatalf("error %v is not an *ApplyError", err)
		}
		if ae.Line != 5 || ae.SQLState != "42703" || !ae.RolledBack || !strings.HasSuffix(ae.File, "00002_bad.sql") {
			t.Errorf("ApplyError = file %s line %d sqlstate %s rolled back %v", ae.File, ae.Line, ae.SQLState, ae.RolledBack)
		}
		if want := "00002_bad.sql:5: ERROR: column \"no_such_column\" does not exist (SQLSTATE 42703)"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
		if len(ae.Applied) != 1 || ae.Applied[0].Version != "1" {
			t.Errorf("applied = %+v", ae.Applied)
		}
		if n := len(ae.Failed.Statements); n != 2 || ae.Failed.Statements[1].SQLState != "42703" {
			t.Errorf("failed statements = %+v", ae.Failed.Statements)
		}
		if len(rep.Migrations) != 2 {
			t.Errorf("report has %d migrations, want the applied one and the failed one", len(rep.Migrations))
		}
		if code := queryErr(t, ctx, dsn, "SELECT second_col FROM accounts"); code != "42703" {
			t.Errorf("second_col: SQLSTATE %q: the failed migration was not rolled back", code)
		}
		if code := queryErr(t, ctx, dsn, "SELECT first_col FROM accounts"); code != "" {
			t.Errorf("first_col: SQLSTATE %q: the first migration is missing", code)
		}
	})

	t.Run("history, ApplyUpTo and continuing from a baseline", func(t *testing.T) {
		dsn := env.freshDB(t)
		dir := writeDir(t, map[string]string{
			"00001_a.sql": "-- +goose Up\nCREATE TABLE hist_a (id int);\n",
			"00002_b.sql": "-- +goose Up\nCREATE TABLE hist_b (id int);\n",
			"00003_c.sql": "-- +goose Up\nCREATE TABLE hist_c (id int);\n",
		})
		// goose says version 1 is applied (and was never really run).
		if code := queryErr(t, ctx, dsn, `CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());
INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true)`); code != "" {
			t.Fatal(code)
		}
		set, err := Discover(dir, FormatAuto)
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(Config{DSN: dsn, Set: set})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := m.ApplyUpTo(ctx, "2")
		if err != nil {
			t.Fatal(err)
		}
		if rep.History != "goose_db_version" || !slices.Equal(rep.Skipped, []string{"1"}) || len(rep.Migrations) != 1 || rep.Migrations[0].Version != "2" {
			t.Errorf("ApplyUpTo(2): history %q skipped %v migrations %d", rep.History, rep.Skipped, len(rep.Migrations))
		}
		if code := queryErr(t, ctx, dsn, "SELECT * FROM hist_a"); code != "42P01" {
			t.Errorf("hist_a: SQLSTATE %q, want 42P01: an applied version ran again", code)
		}
		m2, err := New(Config{DSN: dsn, Set: set}, WithAssumeAppliedUpTo("2"))
		if err != nil {
			t.Fatal(err)
		}
		rep2, err := m2.Apply(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep2.Migrations) != 1 || rep2.Migrations[0].Version != "3" {
			t.Errorf("continuing applied %+v, want only version 3", rep2.Migrations)
		}
	})

	histories := []struct {
		name    string
		dir     string
		setup   string
		skipped []string
		applied []string // versions run ("" for a repeatable)
		err     string
	}{
		{
			name:    "golang-migrate schema_migrations",
			dir:     "testdata/golang-migrate/ok",
			setup:   "CREATE TABLE gadgets (id int PRIMARY KEY); CREATE TABLE parts (id int PRIMARY KEY, gadget_id int); CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (1, false)",
			skipped: []string{"1"},
			applied: []string{"2", "10"},
		},
		{
			name:  "golang-migrate dirty",
			dir:   "testdata/golang-migrate/ok",
			setup: "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (1, true)",
			err:   "database is dirty at version 1",
		},
		{
			name:    "dbmate schema_migrations",
			dir:     "testdata/dbmate/ok",
			setup:   "CREATE TABLE gizmos (id int PRIMARY KEY, kind text); CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101000000')",
			skipped: []string{"20240101000000"},
			applied: []string{"20240102000000"},
		},
		{
			name: "flyway_schema_history",
			dir:  "testdata/flyway/ok",
			setup: `CREATE TABLE things (id int PRIMARY KEY, label text);
CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL, script varchar(1000) NOT NULL, checksum int, success boolean NOT NULL);
INSERT INTO flyway_schema_history VALUES (1, '1', 'create things', 'V1__create_things.sql', 0, true),
  (2, NULL, 'a function', 'R__a_function.sql', ` + fmt.Sprint(flywayChecksum("CREATE OR REPLACE FUNCTION thing_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM things $$;\n")) + `, true),
  (3, NULL, 'things view', 'R__things_view.sql', 12345, true)`,
			skipped: []string{"1"},
			// The function's checksum matches (not rerun); the view's
			// does not (rerun, after the versioned ones).
			applied: []string{"1.1", "2", "10", ""},
		},
	}
	for _, tt := range histories {
		t.Run(tt.name, func(t *testing.T) {
			dsn := env.freshDB(t)
			if code := queryErr(t, ctx, dsn, tt.setup); code != "" {
				t.Fatalf("setup: SQLSTATE %s", code)
			}
			set, err := Discover(tt.dir, FormatAuto)
			if err != nil {
				t.Fatal(err)
			}
			m, err := New(Config{DSN: dsn, Set: set})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := m.Apply(ctx)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var applied []string
			for _, m := range rep.Migrations {
				applied = append(applied, m.Version)
			}
			if !slices.Equal(rep.Skipped, tt.skipped) || !slices.Equal(applied, tt.applied) {
				t.Errorf("skipped %v applied %v, want %v and %v", rep.Skipped, applied, tt.skipped, tt.applied)
			}
		})
	}

	t.Run("external command", func(t *testing.T) {
		dsn := env.freshDB(t)
		psql := filepath.Join(c.BinDir(), "psql")
		dir := writeDir(t, map[string]string{
			"up.sql": "BEGIN;\nALTER TABLE accounts ALTER COLUMN plan TYPE varchar(20);\nSELECT pg_sleep(0.2);\nCOMMIT;\n",
		})
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		cmd := &Command{Name: "psql", Argv: []string{psql, "{{dsn}}", "-X", "-v", "ON_ERROR_STOP=1", "-f", filepath.Join(dir, "up.sql")}}
		m, err := New(Config{DSN: dsn, Command: cmd}, WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := m.Apply(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s := rep.Migrations[0].Statements[0]
		if l, ok := lockOn(s, "accounts"); !ok || l.Mode != LockAccessExclusive || l.Samples == 0 {
			t.Errorf("locks = %+v, want ACCESS EXCLUSIVE on accounts seen by the watcher", s.Locks)
		}
		if !slices.Equal(s.Rewritten, []string{"accounts"}) {
			t.Errorf("rewritten = %v", s.Rewritten)
		}
		if b := s.RowsBefore["accounts"]; b == 0 || s.RowsAfter["accounts"] != b {
			t.Errorf("rows %v → %v", s.RowsBefore, s.RowsAfter)
		}
		if !strings.Contains(rep.Source, "{{dsn}}") || !strings.Contains(rep.Migrations[0].Output, "ALTER TABLE") {
			t.Errorf("source %q output %q", rep.Source, rep.Migrations[0].Output)
		}
		if strings.Contains(logs.String(), dsn) || strings.Contains(rep.Source, dsn) {
			t.Error("the DSN leaked into the logs or the report")
		}

		// DATABASE_URL reaches the command (as a URL), and a failure is
		// an ApplyError with the command's last words.
		bad := &Command{Argv: []string{"sh", "-c", psql + ` "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -c 'CREATE TABLE via_env (id int)' -c 'SELECT nope'`}}
		m, err = New(Config{DSN: dsn, Command: bad})
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Apply(ctx)
		var ae *ApplyError
		if !errors.As(err, &ae) || !strings.Contains(err.Error(), `column "nope" does not exist`) {
			t.Errorf("error = %v, want an ApplyError with psql's message", err)
		}
		if code := queryErr(t, ctx, dsn, "SELECT * FROM via_env"); code != "" {
			t.Errorf("via_env: SQLSTATE %q: DATABASE_URL did not reach the command", code)
		}
	})
}
