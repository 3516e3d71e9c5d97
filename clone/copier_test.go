package clone_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/dbtwin/dbtwin/internal/progress"
	"github.com/jackc/pgx/v5"
)

// The clone tests share one cluster (with TCP, for the password tests): the
// source database "src" is loaded from testdata/features.sql once, and each
// subtest clones or restores it into a database of its own.
func TestClone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := localtest.Start(t, localtest.WithTCP)
	loadFeatures(t, ctx, c, "src")
	exec1(t, ctx, c.DSN("src"), `
CREATE ROLE reader LOGIN;
GRANT CONNECT ON DATABASE src TO reader;
GRANT USAGE ON SCHEMA public, "Sales" TO reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public, "Sales" TO reader;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, "Sales" TO reader;
GRANT SELECT ON LARGE OBJECT 424242 TO reader;
CREATE ROLE nosy LOGIN; -- may connect, may read nothing`)
	src := c.DSN("src")
	want := fingerprint(t, ctx, src)

	t.Run("features as a read-only role", func(t *testing.T) {
		rec := newRecorder()
		readerDSN := src + " user=reader"
		res, err := clone.Clone(ctx, readerDSN, c.DSN("features"), clone.Options{
			Jobs: 4, SplitThreshold: 64 << 10, Progress: rec, Logger: testLogger(t),
		})
		if err != nil {
			t.Fatalf("Clone: %v", err)
		}
		got := fingerprint(t, ctx, c.DSN("features"))
		compareFingerprints(t, want, got)
		compareSchemas(t, ctx, c, "src", "features")

		// Sequences continue where the source's are.
		for _, tt := range []struct {
			seq  string
			next int64
		}{
			{`"Sales".invoice_no`, 1015},
			{`fresh_seq`, 1},
			{`orders_id_seq`, 30001},
			{`customers_id_seq`, 601},
			{`events_id_seq`, 3001},
		} {
			var next int64
			queryRow(t, ctx, c.DSN("features"), "SELECT nextval($1::text::regclass)", []any{tt.seq}, &next)
			if next != tt.next {
				t.Errorf("nextval(%s) on the clone = %d, want %d", tt.seq, next, tt.next)
			}
		}
		// Matviews: populated ones refreshed, the unpopulated one left so.
		var populated string
		queryRow(t, ctx, c.DSN("features"), `SELECT string_agg(relname || '=' || relispopulated, ',' ORDER BY relname)
			FROM pg_class WHERE relkind = 'm'`, nil, &populated)
		if w := "never_populated=false,order_totals=true,top_customers=true"; populated != w {
			t.Errorf("materialized views on the clone: %s, want %s", populated, w)
		}
		// Generated columns are the target's own computation.
		var bad int
		queryRow(t, ctx, c.DSN("features"), `SELECT count(*) FROM customers WHERE name_upper IS DISTINCT FROM upper(name)`, nil, &bad)
		if bad != 0 {
			t.Errorf("%d customers have a wrong generated name_upper", bad)
		}
		// The large object came along.
		var lo string
		queryRow(t, ctx, c.DSN("features"), `SELECT md5(lo_get(424242))`, nil, &lo)
		var loWant string
		queryRow(t, ctx, src, `SELECT md5(lo_get(424242))`, nil, &loWant)
		if lo != loWant {
			t.Errorf("large object 424242: md5 %s on the clone, %s on the source", lo, loWant)
		}
		// Statistics are there: every table and view with rows has them
		// (copied from the source, or gathered on the clone where the
		// source's cannot be copied: see "planner statistics").
		var without string
		queryRow(t, ctx, c.DSN("features"), `SELECT coalesce(string_agg(c.relname, ',' ORDER BY c.relname), '')
			FROM pg_class c WHERE c.relkind IN ('r', 'm') AND c.relnamespace <> 'pg_catalog'::regnamespace
			  AND c.relnamespace <> 'information_schema'::regnamespace AND c.relnamespace <> 'pg_toast'::regnamespace
			  AND c.reltuples > 0 AND NOT EXISTS (SELECT FROM pg_statistic s WHERE s.starelid = c.oid)`, nil, &without)
		if without != "" {
			t.Errorf("tables with rows but no statistics on the clone: %s", without)
		}
		// Inherited statistics where the source has them, and only there;
		// every partition has its own.
		var inherited, leaves string
		queryRow(t, ctx, c.DSN("features"), `SELECT coalesce(string_agg(DISTINCT tablename, ','), '') FROM pg_stats
			WHERE inherited AND (tablename LIKE 'events%' OR tablename LIKE 'readings%')`, nil, &inherited)
		if inherited != "events,events_2025" {
			t.Errorf("tables with inherited statistics on the clone: %q, want events,events_2025 (as on the source)", inherited)
		}
		queryRow(t, ctx, c.DSN("features"), `SELECT string_agg(DISTINCT tablename, ',') FROM pg_stats
			WHERE (tablename LIKE 'events_%' OR tablename LIKE 'readings_%') AND NOT inherited`, nil, &leaves)
		if leaves != "events_2024,events_2025_h0,events_2025_h1,readings_1,readings_2" {
			t.Errorf("partitions with statistics on the clone: %q", leaves)
		}
		// A populated materialized view is analyzed after its refresh: its
		// statistics count its rows (-1 before any ANALYZE).
		var mvStats string
		queryRow(t, ctx, c.DSN("features"), `SELECT
			'order_totals=' || ((SELECT reltuples FROM pg_class WHERE relname = 'order_totals') = (SELECT count(*) FROM order_totals)) ||
			',top_customers=' || ((SELECT reltuples FROM pg_class WHERE relname = 'top_customers') = (SELECT count(*) FROM top_customers))`, nil, &mvStats)
		if w := "order_totals=true,top_customers=true"; mvStats != w {
			t.Errorf("materialized views with row statistics on the clone: %s, want %s", mvStats, w)
		}

		// The result and the progress events agree with each other.
		byName := map[string]clone.TableResult{}
		var rows, bytes int64
		for _, tr := range res.Tables {
			byName[tr.Name] = tr
			rows += tr.Rows
			bytes += tr.Bytes
		}
		if rows != res.Rows || bytes != res.Bytes {
			t.Errorf("Result.Rows, Bytes = %d, %d; the tables sum to %d, %d", res.Rows, res.Bytes, rows, bytes)
		}
		for name, wantRows := range map[string]int64{
			"public.orders": 30000 - 30000/97, "public.customers": 600, "public.customer_extras": 300,
			"public.events_2024": 1698, "public.empty_table": 0, "Sales.Quarterly Report": 16,
			"public.notes": 50, "public.urgent_notes": 30, "public.only_generated": 2, "public.scratch": 100,
			"public.mood_log": 200, "public.readings_1": 250, "public.readings_2": 250,
		} {
			if tr := byName[name]; tr.Rows != wantRows {
				t.Errorf("table %s: %d rows copied, want %d (%+v)", name, tr.Rows, wantRows, tr)
			}
		}
		if _, ok := byName["public.events"]; ok {
			t.Errorf("the partitioned parent public.events was copied as a table of its own")
		}
		if ch := byName["public.orders"].Chunks; ch < 2 {
			t.Errorf("public.orders was copied in %d chunk(s); with a 64 KiB split threshold it should be split", ch)
		}
		for _, name := range []string{"public.customer_extras", "Sales.Quarterly Report"} {
			if f := byName[name].Format; f != "text" {
				t.Errorf("table %s copied in format %q, want text (composite or enum[] columns)", name, f)
			}
		}
		for _, name := range []string{"public.customers", "public.orders", "public.mood_log"} {
			if f := byName[name].Format; f != "binary" {
				t.Errorf("table %s copied in format %q, want binary", name, f)
			}
		}
		rec.check(t, res)
		if res.Snapshot == "" || res.Database != "features" {
			t.Errorf("Result: snapshot %q, database %q", res.Snapshot, res.Database)
		}
		noTempDatabases(t, ctx, c)
	})

	t.Run("single worker, no split, plain progress", func(t *testing.T) {
		var out bytes.Buffer
		r := progress.New(&out, false, nil)
		res, err := clone.Clone(ctx, src, c.DSN("serial"), clone.Options{Jobs: 1, SplitThreshold: -1, Progress: r})
		r.Close()
		if err != nil {
			t.Fatalf("Clone: %v", err)
		}
		for _, want := range []string{
			`msg="table copied" table=public.orders rows=29691 `, `msg="table copied" table="Sales.Quarterly Report" rows=16 `,
			`msg="phase done" phase=schema`, `msg="phase done" phase=post-data`, `msg="phase done" phase=finish`,
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("progress output lacks %q:\n%s", want, out.String())
			}
		}
		compareFingerprints(t, want, fingerprint(t, ctx, c.DSN("serial")))
		for _, tr := range res.Tables {
			if tr.Chunks != 1 {
				t.Errorf("table %s copied in %d chunks with splitting disabled", tr.Name, tr.Chunks)
			}
		}
	})

	t.Run("planner statistics", func(t *testing.T) {
		// Without splitting, the clone's rows lie in the source's order,
		// and every table of the fixture is small enough for ANALYZE to
		// read all its rows: ANALYZE of the clone computes exactly what
		// the source's did, which is what the copied statistics must be.
		if _, err := clone.Clone(ctx, src, c.DSN("stats"), clone.Options{Jobs: 2, SplitThreshold: -1, Logger: testLogger(t)}); err != nil {
			t.Fatalf("Clone: %v", err)
		}
		// Copied, not gathered, except where they cannot be.
		var analyzed string
		queryRow(t, ctx, c.DSN("stats"), `SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_stat_user_tables
			WHERE last_analyze IS NOT NULL`, nil, &analyzed)
		if w := strings.Join([]string{
			"Quarterly Report", // a composite column (its = compares fields): that column
			"customer_extras",  // composite columns: those
			"customers",        // a range column (range_typanalyze): that column
			"empty_table",      // no statistics on the source
			"never_populated",  // materialized views, after their refresh
			"order_totals",
			"orders",                   // extended statistics
			"readings_1", "readings_2", // no statistics on the source (created after its ANALYZE)
			"top_customers",
		}, ","); analyzed != w {
			t.Errorf("tables analyzed on the clone:\n%s\nwant\n%s", analyzed, w)
		}
		// Autovacuum will not analyze them again at once.
		var pending string
		queryRow(t, ctx, c.DSN("stats"), `SELECT coalesce(string_agg(relname, ','), '') FROM pg_stat_user_tables
			WHERE n_mod_since_analyze > 0`, nil, &pending)
		if pending != "" {
			t.Errorf("tables autovacuum would analyze again: %s", pending)
		}
		// The source's statistics, value for value. (The source has none
		// for readings, created after its ANALYZE: the clone gathers its
		// partitions' own, as autovacuum would, and none over the
		// partitioned table, as on the source.)
		pgStats := `SELECT schemaname || '.' || tablename || '.' || attname || CASE WHEN inherited THEN ' (inherited)' ELSE '' END,
			concat_ws(' | ', null_frac, avg_width, n_distinct, most_common_vals, most_common_freqs, histogram_bounds,
			          correlation, most_common_elems, most_common_elem_freqs, elem_count_histogram)
			FROM pg_stats WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND tablename NOT LIKE 'readings%'`
		srcStats := keyedRows(t, ctx, src, pgStats)
		if len(srcStats) < 50 {
			t.Fatalf("only %d statistics rows on the source", len(srcStats))
		}
		compareKeyed(t, "pg_stats", srcStats, keyedRows(t, ctx, c.DSN("stats"), pgStats))
		// What ANALYZE on the clone would write: kinds, operators,
		// collations, numbers, values with their element type (the binary
		// form carries its OID), and the sizes in pg_class.
		exec1(t, ctx, c.DSN("postgres"), `CREATE DATABASE stats_analyzed TEMPLATE stats`)
		exec1(t, ctx, c.DSN("stats_analyzed"), `ANALYZE`)
		var slots []string
		for i := 1; i <= 5; i++ {
			slots = append(slots, fmt.Sprintf("s.stakind%[1]d, s.staop%[1]d::regoperator, s.stacoll%[1]d, s.stanumbers%[1]d, encode(anyarray_send(s.stavalues%[1]d), 'hex')", i))
		}
		statistic := `SELECT c.relname || '.' || coalesce(a.attname, s.staattnum::text) || CASE WHEN s.stainherit THEN ' (inherited)' ELSE '' END,
			concat_ws(' | ', s.stanullfrac, s.stawidth, s.stadistinct, ` + strings.Join(slots, ", ") + `)
			FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid
			LEFT JOIN pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum
			WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)
			  AND c.relname <> 'readings'`
		want := keyedRows(t, ctx, c.DSN("stats_analyzed"), statistic)
		if len(want) < 50 {
			t.Fatalf("only %d pg_statistic rows after ANALYZE", len(want))
		}
		compareKeyed(t, "pg_statistic", want, keyedRows(t, ctx, c.DSN("stats"), statistic))
		sizes := `SELECT relname, concat_ws(' ', relpages, reltuples, relallvisible) FROM pg_class
			WHERE relkind IN ('r', 'p', 'm') AND relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
			  AND relname <> 'readings'`
		compareKeyed(t, "pg_class relpages reltuples relallvisible", keyedRows(t, ctx, c.DSN("stats_analyzed"), sizes), keyedRows(t, ctx, c.DSN("stats"), sizes))

		// A target role that may not write pg_statistic: ANALYZE, with the
		// same result.
		exec1(t, ctx, c.DSN("postgres"), `CREATE ROLE builder LOGIN CREATEDB`)
		if _, err := clone.Clone(ctx, src, c.DSN("stats_builder")+" user=builder", clone.Options{Jobs: 2, SplitThreshold: -1}); err != nil {
			t.Fatalf("Clone as a role that is not superuser: %v", err)
		}
		compareKeyed(t, "pg_stats, target role not superuser", srcStats, keyedRows(t, ctx, c.DSN("stats_builder"), pgStats))
		queryRow(t, ctx, c.DSN("stats_builder"), `SELECT coalesce(string_agg(relname, ','), '') FROM pg_stat_user_tables
			WHERE last_analyze IS NULL AND relname NOT LIKE 'readings%' AND relname NOT LIKE 'events%'`, nil, &pending)
		if pending != "" {
			t.Errorf("tables not analyzed by a target role that is not superuser: %s", pending)
		}
	})

	t.Run("password over TCP into another cluster", func(t *testing.T) {
		other := localtest.Start(t)
		_, err := clone.Clone(ctx, c.TCPDSN("src"), other.DSN("copy"), clone.Options{Jobs: 2})
		if err != nil {
			t.Fatalf("Clone: %v", err)
		}
		compareFingerprints(t, want, fingerprint(t, ctx, other.DSN("copy")))
		noTempDatabases(t, ctx, other)
	})

	t.Run("replace", func(t *testing.T) {
		target := c.DSN("occupied")
		if err := c.CreateDatabase(ctx, "occupied"); err != nil {
			t.Fatal(err)
		}
		exec1(t, ctx, target, `CREATE TABLE precious (x int); INSERT INTO precious VALUES (1)`)
		_, err := clone.Clone(ctx, src, target, clone.Options{})
		var ne *clone.NotEmptyError
		if !errors.As(err, &ne) || ne.Database != "occupied" {
			t.Fatalf("Clone into a non-empty target without Replace: err = %v, want *NotEmptyError", err)
		}
		if !strings.Contains(err.Error(), `target database "occupied" is not empty: pass --replace to overwrite it`) {
			t.Errorf("error message: %v", err)
		}
		var n int
		queryRow(t, ctx, target, "SELECT count(*) FROM precious", nil, &n) // untouched
		noTempDatabases(t, ctx, c)

		if _, err := clone.Clone(ctx, src, target, clone.Options{Replace: true}); err != nil {
			t.Fatalf("Clone with Replace: %v", err)
		}
		compareFingerprints(t, want, fingerprint(t, ctx, target))

		// An existing but empty target needs no Replace.
		if err := c.CreateDatabase(ctx, "vacant"); err != nil {
			t.Fatal(err)
		}
		if _, err := clone.Clone(ctx, src, c.DSN("vacant"), clone.Options{}); err != nil {
			t.Fatalf("Clone into an empty existing database: %v", err)
		}
	})

	t.Run("cancel mid-copy", func(t *testing.T) {
		cctx, ccancel := context.WithCancel(ctx)
		defer ccancel()
		rec := newRecorder()
		rec.onAdvance = ccancel
		_, err := clone.Clone(cctx, src, c.DSN("cancelled"), clone.Options{Jobs: 2, Progress: rec})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Clone with a context cancelled mid-copy: err = %v, want context.Canceled", err)
		}
		noTempDatabases(t, ctx, c)
		if databaseExists(t, ctx, c, "cancelled") {
			t.Errorf("the target database exists after a cancelled clone")
		}
	})

	t.Run("restore", func(t *testing.T) {
		dir := t.TempDir()
		pgDump := filepath.Join(c.BinDir(), "pg_dump")
		for _, tt := range []struct {
			name string
			args []string
			path string
			jobs int
		}{
			{"custom", []string{"-Fc"}, "src.dump", 2},
			{"directory", []string{"-Fd"}, "src.dir", 2},
			{"tar", []string{"-Ft"}, "src.tar", 2},
			{"plain", []string{"-Fp"}, "src.sql", 1},
			{"plain-gzip", []string{"-Fp", "-Z", "6"}, "src.sql.gz", 1},
		} {
			t.Run(tt.name, func(t *testing.T) {
				path := filepath.Join(dir, tt.path)
				args := append(slices.Clone(tt.args), "-f", path, "-d", src)
				if out, err := exec.CommandContext(ctx, pgDump, args...).CombinedOutput(); err != nil {
					t.Fatalf("pg_dump %v: %v\n%s", tt.args, err, out)
				}
				db := "restored_" + strings.ReplaceAll(tt.name, "-", "_")
				res, err := clone.Restore(ctx, path, c.DSN(db), clone.Options{Jobs: tt.jobs})
				if err != nil {
					t.Fatalf("Restore: %v", err)
				}
				compareFingerprints(t, want, fingerprint(t, ctx, c.DSN(db)))
				compareSchemas(t, ctx, c, "src", db)
				if len(res.Phases) == 0 || res.Phases[0].Name != clone.PhaseRestore {
					t.Errorf("Restore phases: %+v", res.Phases)
				}
			})
		}
		noTempDatabases(t, ctx, c)
	})

	t.Run("bad inputs", func(t *testing.T) {
		dir := t.TempDir()
		writeFile := func(name, content string) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}
		// A custom archive cut short after its table of contents.
		full := filepath.Join(dir, "full.dump")
		if out, err := exec.CommandContext(ctx, filepath.Join(c.BinDir(), "pg_dump"), "-Fc", "-f", full, "-d", src).CombinedOutput(); err != nil {
			t.Fatalf("pg_dump: %v\n%s", err, out)
		}
		b, err := os.ReadFile(full)
		if err != nil {
			t.Fatal(err)
		}
		truncated := writeFile("truncated.dump", string(b[:len(b)*2/3]))
		garbage := writeFile("garbage.dump", "PGDMP\x01\x0e\x00\x04\x08\x01 this is not an archive")
		fromTheFuture := writeFile("future.dump", string(futureArchive()))
		badSQL := writeFile("bad.sql", "CREATE TABLE ok (id int);\nCREATE TABLE broken (id int;\n")
		withConnect := writeFile("cluster.sql", "CREATE DATABASE other;\n\\connect other\nCREATE TABLE t (id int);\n")
		oldTools := fakeTools(t, "12.22")
		tcpWrong := regexp.MustCompile(`password=\S+`).ReplaceAllString(c.TCPDSN("src"), "password=wr0ngpw")

		tests := []struct {
			name    string
			run     func(target string) error
			want    []string
			notWant string
			check   func(t *testing.T, err error)
		}{
			{
				name: "unreachable source",
				run: func(target string) error {
					_, err := clone.Clone(ctx, "host=127.0.0.1 port=1 user=app dbname=shop connect_timeout=5", target, clone.Options{})
					return err
				},
				want: []string{"connect to source app@127.0.0.1:1/shop", "no server listens there: check the host and port in --source"},
			},
			{
				name: "wrong password",
				run: func(target string) error {
					_, err := clone.Clone(ctx, tcpWrong, target, clone.Options{})
					return err
				},
				want:    []string{"connect to source dbtwin@127.0.0.1:", "password authentication failed", "check the user and password in --source"},
				notWant: "wr0ngpw",
			},
			{
				name: "missing source database",
				run: func(target string) error {
					_, err := clone.Clone(ctx, c.DSN("nope"), target, clone.Options{})
					return err
				},
				want: []string{"connect to source", `database "nope" does not exist`, "check the database name in --source"},
			},
			{
				name: "source role without SELECT",
				run: func(target string) error {
					_, err := clone.Clone(ctx, src+" user=nosy", target, clone.Options{})
					return err
				},
				want: []string{"lock tables on source nosy@", "permission denied", "GRANT SELECT ON ALL TABLES IN SCHEMA"},
			},
			{
				name: "unreachable target",
				run: func(string) error {
					_, err := clone.Clone(ctx, src, "host=127.0.0.1 port=1 user=app dbname=shop connect_timeout=5", clone.Options{})
					return err
				},
				want: []string{"connect to target server app@127.0.0.1:1/postgres", "no server listens there: check the host and port in --target"},
			},
			{
				name: "target is the source",
				run: func(string) error {
					_, err := clone.Clone(ctx, src, src, clone.Options{Replace: true})
					return err
				},
				want: []string{"source and target are the same database"},
			},
			{
				name: "no pg_dump",
				run: func(target string) error {
					_, err := clone.Clone(ctx, src, target, clone.Options{BinDir: t.TempDir()})
					return err
				},
				want: []string{"find pg_dump and pg_restore", "no PostgreSQL program"},
			},
			{
				name: "pg_dump older than the source",
				run: func(target string) error {
					_, err := clone.Clone(ctx, src, target, clone.Options{BinDir: oldTools})
					return err
				},
				want: []string{"pg_dump 12", "PostgreSQL 15", "postgresql-client-15"},
				check: func(t *testing.T, err error) {
					var ve *clone.VersionError
					if !errors.As(err, &ve) || ve.ProgramMajor != 12 || ve.NeedMajor != 15 {
						t.Errorf("err = %#v, want a *clone.VersionError 12 < 15", err)
					}
				},
			},
			{
				name: "missing dump file",
				run: func(target string) error {
					_, err := clone.Restore(ctx, filepath.Join(dir, "missing.dump"), target, clone.Options{})
					return err
				},
				want: []string{"missing.dump", "does not exist"},
			},
			{
				name: "garbage custom dump",
				run: func(target string) error {
					_, err := clone.Restore(ctx, garbage, target, clone.Options{})
					return err
				},
				want: []string{garbage, "pg_restore"},
			},
			{
				name: "truncated custom dump",
				run: func(target string) error {
					_, err := clone.Restore(ctx, truncated, target, clone.Options{Jobs: 2})
					return err
				},
				want: []string{truncated, "pg_restore: error"},
			},
			{
				name: "archive from a newer pg_dump",
				run: func(target string) error {
					_, err := clone.Restore(ctx, fromTheFuture, target, clone.Options{})
					return err
				},
				want: []string{"pg_restore 15", fromTheFuture, "written by pg_dump 99.1", "postgresql-client-99", "unsupported version (1.99) in file header"},
				check: func(t *testing.T, err error) {
					var ve *clone.VersionError
					if !errors.As(err, &ve) || ve.Program != "pg_restore" || ve.NeedMajor != 99 {
						t.Errorf("err = %#v, want a *clone.VersionError for pg_restore needing 99", err)
					}
				},
			},
			{
				name: "failing plain SQL",
				run: func(target string) error {
					_, err := clone.Restore(ctx, badSQL, target, clone.Options{})
					return err
				},
				want: []string{badSQL + ":2: ERROR:", "syntax error"},
			},
			{
				name: "plain dump with \\connect",
				run: func(target string) error {
					_, err := clone.Restore(ctx, withConnect, target, clone.Options{})
					return err
				},
				want: []string{withConnect, "line 2 switches databases", "--create"},
			},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := fmt.Sprintf("bad_%d", i)
				err := tt.run(c.DSN(db))
				if err == nil {
					t.Fatal("no error")
				}
				t.Logf("error: %v", err)
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q\ndoes not mention %q", err, w)
					}
				}
				if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
					t.Errorf("error %q leaks %q", err, tt.notWant)
				}
				if tt.check != nil {
					tt.check(t, err)
				}
				noTempDatabases(t, ctx, c)
				if databaseExists(t, ctx, c, db) {
					t.Errorf("database %s exists after a failed clone", db)
				}
				if databaseExists(t, ctx, c, "other") {
					t.Errorf("the plain dump's CREATE DATABASE ran")
				}
			})
		}
	})
}

// TestCloneSnapshotConsistency moves money between two tables while a clone
// runs: each transfer debits a row of accounts_a and credits one of
// accounts_b in one transaction, so the sum over both
// tables never changes. A copy that read the two tables at different
// moments would see a different sum; the clone must not.
func TestCloneSnapshotConsistency(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := localtest.Start(t)
	if err := c.CreateDatabase(ctx, "bank"); err != nil {
		t.Fatal(err)
	}
	const accounts, initial = 20000, 1000
	exec1(t, ctx, c.DSN("bank"), fmt.Sprintf(`
CREATE TABLE accounts_a (id integer PRIMARY KEY, balance bigint NOT NULL, pad text); -- the larger: copied first
CREATE TABLE accounts_b (id integer PRIMARY KEY, balance bigint NOT NULL, pad text);
INSERT INTO accounts_a SELECT i, %[2]d, repeat('a', 200) FROM generate_series(1, %[1]d) i;
INSERT INTO accounts_b SELECT i, %[2]d, repeat('b', 100) FROM generate_series(1, %[1]d) i;`, accounts, initial))
	const invariant = 2 * accounts * initial

	var transfers atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		conn, err := pgx.Connect(ctx, c.DSN("bank"))
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		rng := rand.New(rand.NewPCG(1, 2))
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Always a → b: every transfer between two reads of a
			// non-snapshot copy would change the total it sees.
			from, to := "accounts_a", "accounts_b"
			amount := 1 + rng.IntN(50)
			_, err := conn.Exec(ctx, fmt.Sprintf(`BEGIN;
UPDATE %s SET balance = balance - %d WHERE id = %d;
UPDATE %s SET balance = balance + %d WHERE id = %d;
COMMIT`, from, amount, 1+rng.IntN(accounts), to, amount, 1+rng.IntN(accounts)))
			if err != nil {
				t.Error(err)
				return
			}
			transfers.Add(1)
		}
	})
	for transfers.Load() < 20 {
		time.Sleep(5 * time.Millisecond)
	}

	// Two workers copy the two tables. When the data phase starts, the test
	// locks accounts_b in the temporary database for a while, so the worker
	// that loads it stalls on its TRUNCATE and only then starts reading the
	// source, long after the other worker did, while transfers go on.
	// Sessions that merely began their transactions separately would see
	// different totals; sessions sharing the exported snapshot see one.
	rec := newRecorder()
	var during atomic.Int64
	var locker sync.WaitGroup
	rec.onPhaseStart = func(name string) {
		if name != clone.PhaseData {
			return
		}
		var tmp string
		queryRow(t, ctx, c.DSN("postgres"), "SELECT datname FROM pg_database WHERE strpos(datname, $1) > 0",
			[]any{clone.TempDatabaseMarker}, &tmp)
		conn, err := pgx.Connect(ctx, c.DSN(tmp))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "BEGIN; LOCK TABLE accounts_b IN ACCESS EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		locker.Go(func() {
			defer conn.Close(context.Background())
			before := transfers.Load()
			time.Sleep(400 * time.Millisecond)
			during.Store(transfers.Load() - before)
			if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
				t.Error(err)
			}
		})
	}
	_, err := clone.Clone(ctx, c.DSN("bank"), c.DSN("bank_clone"), clone.Options{Jobs: 2, Progress: rec})
	locker.Wait()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Clone: %v", err)
	}
	if during.Load() == 0 {
		t.Fatal("no transfer happened while the clone ran; the test proves nothing")
	}
	for _, dsn := range []string{c.DSN("bank"), c.DSN("bank_clone")} {
		var sum int64
		queryRow(t, ctx, dsn, `SELECT (SELECT sum(balance) FROM accounts_a) + (SELECT sum(balance) FROM accounts_b)`, nil, &sum)
		if sum != invariant {
			t.Errorf("%s: total balance %d, want %d", pgdsn.Describe(dsn), sum, invariant)
		}
	}
	t.Logf("%d transfers committed while one worker waited", during.Load())
}

// BenchmarkClone clones a database of a few MB (one large table, a few
// small ones) into the same cluster. The comparison with pg_dump/pg_restore
// lives with the CLI benchmarks.
func BenchmarkClone(b *testing.B) {
	ctx := context.Background()
	c := localtest.Start(b)
	if err := c.CreateDatabase(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	exec1(b, ctx, c.DSN("bench"), `
CREATE TABLE big (id bigint PRIMARY KEY, customer integer NOT NULL, amount numeric(12,2), note text, at timestamptz);
INSERT INTO big SELECT i, i % 1000, i * 0.5, md5(i::text), '2024-01-01'::timestamptz + i * interval '1 second'
FROM generate_series(1, 60000) i;
CREATE INDEX big_customer ON big (customer);
CREATE TABLE small1 AS SELECT i AS id, md5(i::text) AS v FROM generate_series(1, 5000) i;
CREATE TABLE small2 AS SELECT i AS id, i * 2 AS v FROM generate_series(1, 5000) i;
ANALYZE;`)
	var bytes int64
	for b.Loop() {
		res, err := clone.Clone(ctx, c.DSN("bench"), c.DSN("bench_clone"), clone.Options{Replace: true})
		if err != nil {
			b.Fatal(err)
		}
		bytes = res.Bytes
	}
	b.SetBytes(bytes)
}

// loadFeatures creates database db from testdata/features.sql.
func loadFeatures(t *testing.T, ctx context.Context, c *local.Cluster, db string) {
	t.Helper()
	if err := c.CreateDatabase(ctx, db); err != nil {
		t.Fatal(err)
	}
	sql, err := os.ReadFile("testdata/features.sql")
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, ctx, c.DSN(db), string(sql))
}

func exec1(t testing.TB, ctx context.Context, dsn, sql string) {
	t.Helper()
	if err := execErr(ctx, dsn, sql); err != nil {
		t.Fatalf("%v\nin:\n%s", err, sql)
	}
}

// execErr runs sql on dsn and returns its error.
func execErr(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func queryRow(t *testing.T, ctx context.Context, dsn, sql string, args []any, dest ...any) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// fingerprint returns, for every table and populated materialized view
// (inheritance parents counted without their children), its row count and
// an md5 over its rows in a fixed order, and every sequence's state.
func fingerprint(t *testing.T, ctx context.Context, dsn string) map[string]string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `
SELECT c.relkind::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND (c.relkind <> 'm' OR c.relispopulated)
ORDER BY 2`)
	if err != nil {
		t.Fatal(err)
	}
	type rel struct{ Kind, Name string }
	rels, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rel])
	if err != nil {
		t.Fatal(err)
	}
	fp := map[string]string{}
	for _, r := range rels {
		var sql string
		if r.Kind == "S" {
			sql = "SELECT last_value || '/' || is_called FROM " + r.Name
		} else {
			sql = "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ONLY " + r.Name + " t"
		}
		var v string
		if err := conn.QueryRow(ctx, sql).Scan(&v); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		fp[r.Name] = v
	}
	return fp
}

func compareFingerprints(t *testing.T, want, got map[string]string) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if got[name] != want[name] {
			t.Errorf("%s: clone has %q, source has %q", name, got[name], want[name])
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: in the clone, not in the source", name)
		}
	}
}

// compareSchemas compares pg_dump --schema-only of two databases.
func compareSchemas(t *testing.T, ctx context.Context, c *local.Cluster, a, b string) {
	t.Helper()
	da, db := schemaDump(t, ctx, c, a), schemaDump(t, ctx, c, b)
	if da == db {
		return
	}
	la, lb := strings.Split(da, "\n"), strings.Split(db, "\n")
	for i := range max(len(la), len(lb)) {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			t.Errorf("pg_dump --schema-only differs at line %d:\n%s: %s\n%s: %s", i+1, a, x, b, y)
			return
		}
	}
}

var restrictLine = regexp.MustCompile(`(?m)^\\(un)?restrict .*\n`)

func schemaDump(t *testing.T, ctx context.Context, c *local.Cluster, db string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, filepath.Join(c.BinDir(), "pg_dump"), "--schema-only", "--no-owner", "--no-acl",
		"-d", c.DSN(db)).Output()
	if err != nil {
		t.Fatalf("pg_dump %s: %v", db, err)
	}
	return restrictLine.ReplaceAllString(string(out), "")
}

func noTempDatabases(t *testing.T, ctx context.Context, c *local.Cluster) {
	t.Helper()
	var left []string
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(ctx, "SELECT datname FROM pg_database WHERE strpos(datname, $1) > 0", clone.TempDatabaseMarker)
	left, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("temporary databases left behind: %v", left)
	}
}

func databaseExists(t *testing.T, ctx context.Context, c *local.Cluster, db string) bool {
	t.Helper()
	var ok bool
	queryRow(t, ctx, c.DSN("postgres"), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", []any{db}, &ok)
	return ok
}

// futureArchive is the start of a custom archive in format 1.99, as a
// pg_dump 99.1 might write it (see WriteHead in pg_backup_archiver.c).
func futureArchive() []byte {
	var b bytes.Buffer
	b.WriteString("PGDMP")
	b.Write([]byte{1, 99, 0, 4, 8, 1, 0}) // version 1.99.0, int size, offset size, custom, no compression
	writeInt := func(v int) { b.Write([]byte{0, byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}) }
	for _, v := range []int{0, 0, 12, 1, 0, 199, 0} { // creation time
		writeInt(v)
	}
	for _, s := range []string{"app", "99.1", "99.1"} { // database, server and pg_dump versions
		writeInt(len(s))
		b.WriteString(s)
	}
	return b.Bytes()
}

// fakeTools makes a directory of pg_dump, pg_restore and psql scripts that
// claim to be the given version and fail if actually run.
func fakeTools(t *testing.T, version string) string {
	dir := t.TempDir()
	for _, p := range []string{"pg_dump", "pg_restore", "psql"} {
		script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = --version ]; then echo '%s (PostgreSQL) %s'; exit 0; fi\necho 'must not run' >&2; exit 3\n", p, version)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// recorder is a clone.Progress that records events and checks them.
type recorder struct {
	mu           sync.Mutex
	phases       []string
	plan         []clone.TableInfo
	advanced     map[string]int64
	done         map[string]clone.TableResult
	errs         []string
	onAdvance    func()
	onTableDone  func()
	onPhaseStart func(name string)
}

func newRecorder() *recorder {
	return &recorder{advanced: map[string]int64{}, done: map[string]clone.TableResult{}}
}

func (r *recorder) PhaseStart(name string) {
	r.mu.Lock()
	r.phases = append(r.phases, "start "+name)
	f := r.onPhaseStart
	r.mu.Unlock()
	if f != nil {
		f(name)
	}
}

func (r *recorder) PhaseDone(p clone.Phase) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases = append(r.phases, "done "+p.Name)
}

func (r *recorder) Start(plan []clone.TableInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plan = plan
}

func (r *recorder) Advance(table string, n int64) {
	r.mu.Lock()
	r.advanced[table] += n
	if _, ok := r.done[table]; ok {
		r.errs = append(r.errs, "Advance after TableDone for "+table)
	}
	f := r.onAdvance
	r.mu.Unlock()
	if f != nil {
		f()
	}
}

func (r *recorder) TableDone(tr clone.TableResult) {
	r.mu.Lock()
	if _, ok := r.done[tr.Name]; ok {
		r.errs = append(r.errs, "TableDone twice for "+tr.Name)
	}
	r.done[tr.Name] = tr
	f := r.onTableDone
	r.mu.Unlock()
	if f != nil {
		f()
	}
}

func (r *recorder) check(t *testing.T, res *clone.Result) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
	var phases []string
	for _, p := range res.Phases {
		phases = append(phases, "start "+p.Name, "done "+p.Name)
	}
	if !slices.Equal(r.phases, phases) {
		t.Errorf("progress phases %v, result phases %v", r.phases, phases)
	}
	if len(r.plan) != len(res.Tables) || len(r.done) != len(res.Tables) {
		t.Errorf("plan has %d tables, TableDone came for %d, the result has %d", len(r.plan), len(r.done), len(res.Tables))
	}
	for i := 1; i < len(r.plan); i++ {
		if r.plan[i].Bytes > r.plan[i-1].Bytes {
			t.Errorf("plan is not largest first: %+v before %+v", r.plan[i-1], r.plan[i])
		}
	}
	for _, tr := range res.Tables {
		if r.done[tr.Name] != tr {
			t.Errorf("TableDone %+v, result %+v", r.done[tr.Name], tr)
		}
		if r.advanced[tr.Name] != tr.Bytes {
			t.Errorf("table %s: Advance summed to %d bytes, result says %d", tr.Name, r.advanced[tr.Name], tr.Bytes)
		}
	}
}

// keyedRows runs sql, which returns (key, value) text pairs, on dsn.
func keyedRows(t *testing.T, ctx context.Context, dsn, sql string) map[string]string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	m := map[string]string{}
	var k, v string
	if _, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		if _, dup := m[k]; dup {
			return fmt.Errorf("key %q twice", k)
		}
		m[k] = v
		return nil
	}); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return m
}

// compareKeyed reports every key whose value differs or that only one side
// has.
func compareKeyed(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: %s missing", what, k)
		} else if g != want[k] {
			t.Errorf("%s: %s\n got %s\nwant %s", what, k, g, want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s unexpected: %s", what, k, got[k])
		}
	}
}
