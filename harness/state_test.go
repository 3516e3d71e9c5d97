package harness

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/dbtwin/dbtwin/compare"
	"github.com/jackc/pgx/v5"
)

// TestCompareFinalState builds a baseline, a candidate and a control that
// differ in known ways and checks what the final-state comparison makes of
// each table.
func TestCompareFinalState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := localtest.Start(t)
	const schema = `
		CREATE TABLE same (id int PRIMARY KEY, v text);
		INSERT INTO same SELECT i, 'v' || i FROM generate_series(1, 50) i;
		CREATE TABLE changed (id int PRIMARY KEY, v text);
		INSERT INTO changed SELECT i, 'v' || i FROM generate_series(1, 5000) i;
		ANALYZE changed;
		CREATE TABLE noisy (id int PRIMARY KEY, v text, ts timestamptz);
		INSERT INTO noisy SELECT i, 'v' || i, '2024-01-01' FROM generate_series(1, 50) i;
		CREATE TABLE noisy_and_changed (id int PRIMARY KEY, v text, ts timestamptz);
		INSERT INTO noisy_and_changed SELECT i, 'v' || i, '2024-01-01' FROM generate_series(1, 50) i;
		CREATE TABLE nopk (a int, b text);
		INSERT INTO nopk SELECT i % 5, 'x' FROM generate_series(1, 20) i;
		CREATE TABLE composite (a int, b int, v text, PRIMARY KEY (a, b));
		INSERT INTO composite SELECT i, j, 'v' FROM generate_series(1, 5) i, generate_series(1, 5) j;
		CREATE TABLE added (id int PRIMARY KEY, v text);
		INSERT INTO added SELECT i, 'v' FROM generate_series(1, 10) i;
		CREATE TABLE retyped (id int PRIMARY KEY, v text);
		INSERT INTO retyped SELECT i, 'v' FROM generate_series(1, 10) i;
		CREATE TABLE only_base (id int PRIMARY KEY);
		CREATE SCHEMA app;
		CREATE TABLE app.nulls (id int PRIMARY KEY, v text);
		INSERT INTO app.nulls VALUES (1, NULL), (2, '');`
	for _, db := range []string{"b", "c", "k"} {
		if err := c.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		execSQL(t, ctx, c.DSN(db), schema)
	}
	// The candidate: migrations and the replay's effects.
	execSQL(t, ctx, c.DSN("c"), `
		UPDATE changed SET v = 'different' WHERE id = 4321;
		UPDATE noisy SET ts = now();
		UPDATE noisy_and_changed SET ts = now();
		UPDATE noisy_and_changed SET v = 'different' WHERE id = 7;
		INSERT INTO nopk VALUES (1, 'x');
		DELETE FROM composite WHERE a = 2 AND b = 3;
		ALTER TABLE added ADD COLUMN extra text DEFAULT 'new';
		ALTER TABLE retyped ALTER COLUMN id TYPE bigint;
		DROP TABLE only_base;
		CREATE TABLE only_cand (id int);
		UPDATE app.nulls SET v = '' WHERE id = 1;`)
	// The control: the same non-determinism as the candidate, nothing else.
	execSQL(t, ctx, c.DSN("k"), `
		UPDATE noisy SET ts = now() - interval '1 day';
		UPDATE noisy_and_changed SET ts = now() - interval '1 day';`)

	fs, err := CompareFinalState(ctx, c.DSN("b"), c.DSN("c"), c.DSN("k"), StateOptions{ChunkRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]compare.TableStateDiff{}
	for _, d := range fs.Diffs {
		got[d.Table] = d
	}
	want := map[string]compare.TableStateDiff{
		"changed":           {Table: "changed", RowsBaseline: 5000, RowsCandidate: 5000, ChunksDiffering: 1, SampleKeys: []string{"4321"}},
		"noisy":             {Table: "noisy", RowsBaseline: 50, RowsCandidate: 50, ChunksDiffering: 1, AlsoInControl: true},
		"noisy_and_changed": {Table: "noisy_and_changed", RowsBaseline: 50, RowsCandidate: 50, ChunksDiffering: 1, SampleKeys: []string{"7"}},
		"nopk":              {Table: "nopk", RowsBaseline: 20, RowsCandidate: 21, ChunksDiffering: 1},
		"composite":         {Table: "composite", RowsBaseline: 25, RowsCandidate: 24, ChunksDiffering: 1, SampleKeys: []string{"(2,3)"}},
		"app.nulls":         {Table: "app.nulls", RowsBaseline: 2, RowsCandidate: 2, ChunksDiffering: 1, SampleKeys: []string{"1"}},
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: no difference found, want %+v", name, w)
			continue
		}
		if name == "noisy" {
			g.SampleKeys = nil // every row differs in ts: any five
		}
		if g.Table != w.Table || g.RowsBaseline != w.RowsBaseline || g.RowsCandidate != w.RowsCandidate ||
			g.ChunksDiffering != w.ChunksDiffering || g.AlsoInControl != w.AlsoInControl || !slices.Equal(g.SampleKeys, w.SampleKeys) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s reported as different: %+v", name, got[name])
		}
	}
	if fs.Tables != 9 {
		t.Errorf("compared %d tables, want 9", fs.Tables)
	}
	notes := strings.Join(fs.Notes, "\n")
	for _, n := range []string{
		"added compared on the 2 columns both sides have (only on the candidate: extra)",
		"retyped: retyped columns compared as text: id (integer → bigint)",
		"only_base exists only on the baseline",
		"only_cand exists only on the candidate",
		"nopk compared as a multiset of rows (it has no primary key)",
	} {
		if !strings.Contains(notes, n) {
			t.Errorf("notes lack %q:\n%s", n, notes)
		}
	}
}

func execSQL(t *testing.T, ctx context.Context, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}
