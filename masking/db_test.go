package masking

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/dbtwin/dbtwin/fixtures"
)

// dbEnv is one sandbox with one fixture tenant, shared by the subtests of
// TestDatabase (starting a cluster and generating data is the slow part).
type dbEnv struct {
	c       *local.Cluster
	src     string // fixture database (the large tenant)
	unusual string // the unusual tenant
}

func (e *dbEnv) conn(t testing.TB, ctx context.Context, db string) *pgx.Conn {
	t.Helper()
	conn, err := e.c.Conn(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL sandbox")
	}
	c := localtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sums, err := fixtures.Generate(ctx, c.DSN("postgres"), fixtures.Config{Tenants: 3, Scale: 0.005, Seed: 1})
	if err != nil {
		t.Fatalf("generate fixtures: %v", err)
	}
	env := &dbEnv{c: c, src: sums[0].Tenant.Database, unusual: sums[2].Tenant.Database}
	t.Run("Catalog", func(t *testing.T) { testCatalogFixture(t, ctx, env) })
	t.Run("CopyRoundTrip", func(t *testing.T) { testCopyRoundTrip(t, ctx, env) })
	t.Run("MaskedClone", func(t *testing.T) { testMaskedClone(t, ctx, env) })
	t.Run("BinaryCodecs", func(t *testing.T) { testBinaryCodecs(t, ctx, env) })
	t.Run("BinaryMatchesText", func(t *testing.T) { testBinaryMatchesText(t, ctx, env) })
	t.Run("Scan", func(t *testing.T) { testScanFixture(t, ctx, env) })
	t.Run("Workload", func(t *testing.T) { testWorkloadFixture(t, ctx, env) })
	t.Run("Audit", func(t *testing.T) { testAuditFixture(t, ctx, env) })
	t.Run("FastPaths", func(t *testing.T) { testFastPathsFixture(t, ctx, env) })
}

func testCatalogFixture(t *testing.T, ctx context.Context, env *dbEnv) {
	cat, err := LoadCatalog(ctx, env.conn(t, ctx, env.src))
	if err != nil {
		t.Fatal(err)
	}
	users := cat.Table("users")
	if users == nil || users.PrimaryKey == nil || users.PrimaryKey.Columns[0] != "id" {
		t.Fatalf("users and its primary key not found: %+v", users)
	}
	if !users.IsUnique("account_id") || users.IsUnique("email") {
		t.Error("users: (account_id, id) is unique, email is not")
	}
	if e := users.Column("email"); e == nil || e.Type != "text" || e.Display != "email_address" || !e.NotNull {
		t.Errorf("users.email: domain email_address over text, not null: %+v", e)
	}
	orders := cat.Table("public.orders")
	var composite *ForeignKey
	for _, fk := range orders.ForeignKeys {
		if len(fk.Columns) == 2 && fk.RefTable == "public.users" {
			composite = fk
		}
	}
	if composite == nil || composite.Columns[1] != "user_id" || composite.RefColumns[1] != "id" {
		t.Errorf("orders (account_id, user_id) → users (account_id, id) not found: %+v", orders.ForeignKeys)
	}
	if c := cat.Table("order_items").Column("line_total"); c == nil || !c.Generated {
		t.Error("order_items.line_total is generated")
	}
	if c := cat.Table("payments").Column("card_expiry"); c.Type != "bpchar" || c.MaxLen != 5 {
		t.Errorf("payments.card_expiry char(5): %+v", c)
	}
	if c := cat.Table("products").Column("price"); c.Precision != 12 || c.Scale != 2 {
		t.Errorf("products.price numeric(12,2): %+v", c)
	}
	p := cat.Table("audit_log_2024q1")
	if p == nil || p.Parent != "public.audit_log" || !cat.Table("audit_log").Partitioned || cat.Root(p).Name != "audit_log" {
		t.Errorf("audit_log partitions: %+v", p)
	}
}

// copyTable streams table from src to dst through COPY text format (binary
// format with binary set), masked by tm when it is not nil — what the
// copier does for a masked table.
func copyTable(ctx context.Context, src, dst *pgx.Conn, table, into pgx.Identifier, cols []string, tm *TableMasker, binary bool) (int64, error) {
	quote := func(cs []string) string {
		q := make([]string, len(cs))
		for i, c := range cs {
			q[i] = pgx.Identifier{c}.Sanitize()
		}
		return strings.Join(q, ", ")
	}
	format, filter := "text", FilterCopyText
	if binary {
		format, filter = "binary", FilterCopyBinary
	}
	pr, pw := io.Pipe()
	go func() {
		// A query, so that a partitioned table reads as a whole.
		_, err := src.PgConn().CopyTo(ctx, pw, fmt.Sprintf("COPY (SELECT %s FROM %s) TO STDOUT (FORMAT %s)", quote(cols), table.Sanitize(), format))
		pw.CloseWithError(err)
	}()
	var r io.Reader = pr
	target := cols
	if tm != nil {
		mr, mw := io.Pipe()
		go func() {
			_, err := filter(ctx, mw, pr, tm, cols)
			pr.CloseWithError(err)
			mw.CloseWithError(err)
		}()
		r = mr
		target = tm.TargetColumns(cols)
	}
	tag, err := dst.PgConn().CopyFrom(ctx, r, fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT %s)", into.Sanitize(), quote(target), format))
	pr.CloseWithError(io.ErrClosedPipe)
	return tag.RowsAffected(), err
}

func testCopyRoundTrip(t *testing.T, ctx context.Context, env *dbEnv) {
	if err := env.c.CreateDatabase(ctx, "copy_rt"); err != nil {
		t.Fatal(err)
	}
	conn := env.conn(t, ctx, "copy_rt")
	_, err := conn.Exec(ctx, `
CREATE TABLE src (id int PRIMARY KEY, kept text, masked text, doc jsonb, bin bytea, n numeric(10,3));
CREATE TABLE dst (LIKE src);
INSERT INTO src VALUES
 (1, E'tab\there', E'tab\there', '{"a": "x\ty"}', '\x00ff5c0a', 1.5),
 (2, E'new\nline\r\n', E'new\nline\r\n', '{"a": "line\nbreak \\\\ back"}', '', -2),
 (3, E'back\\slash \\N \\.', E'back\\slash \\N \\.', '[]', NULL, NULL),
 (4, 'ünïcødé 😀 \u200f', 'ünïcødé 😀 \u200f', '{"ключ": "值"}', '\x5c4e', 0),
 (5, '', '', 'null', '\x', 0.001),
 (6, NULL, NULL, NULL, NULL, NULL),
 (7, E'\\.', E'\\.', '"\\\\."', '\x2e', 7),
 (8, E'bs\bff\fvt\v', E'bs\bff\fvt\v', '{}', '\x08', 8)`)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := LoadCatalog(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ParseRules("rt.yaml", []byte(`version: 1
tables:
  src:
    id: keep
    kept: keep
    masked: {mask: regex, pattern: "^", replace: "M:"}
    doc: keep
    bin: keep
    n: keep
  dst: keep
`))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(rules, cat, testKeyring(t, testKey))
	if err != nil {
		t.Fatal(err)
	}
	tm := plan.Table("src")
	other := env.conn(t, ctx, "copy_rt")
	n, err := copyTable(ctx, conn, other, pgx.Identifier{"public", "src"}, pgx.Identifier{"public", "dst"}, tm.Columns(), tm, false)
	if err != nil {
		t.Fatal(err)
	}
	if n != 8 {
		t.Errorf("copied %d rows, want 8", n)
	}
	var bad int
	err = conn.QueryRow(ctx, `
SELECT count(*) FROM src s FULL JOIN dst d USING (id)
 WHERE s.kept IS DISTINCT FROM d.kept OR s.doc IS DISTINCT FROM d.doc OR s.bin IS DISTINCT FROM d.bin
    OR s.n IS DISTINCT FROM d.n OR ('M:' || s.masked) IS DISTINCT FROM d.masked`).Scan(&bad)
	if err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Errorf("%d rows differ after the round trip", bad)
	}
}
