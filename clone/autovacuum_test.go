package clone_test

import (
	"context"
	"testing"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5"
)

func TestPauseAutovacuum(t *testing.T) {
	ctx := context.Background()
	c := localtest.Start(t)
	if err := c.CreateDatabase(ctx, "av"); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.DSN("av"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
CREATE TABLE plain (id int, body text);
CREATE TABLE "Odd name" (id int) WITH (autovacuum_enabled = true, fillfactor = 80);
CREATE TABLE toasty (body text) WITH (autovacuum_enabled = false, toast.autovacuum_enabled = true);
CREATE TABLE parted (id int) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
CREATE MATERIALIZED VIEW mv AS SELECT 1 AS one;`); err != nil {
		t.Fatal(err)
	}
	options := func() string {
		var s string
		if err := conn.QueryRow(ctx, `SELECT string_agg(c.relname || ' ' || coalesce(c.reloptions::text, '-') || ' toast ' || coalesce(t.reloptions::text, '-'), '; ' ORDER BY c.relname)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
			WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm', 'p')`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := options()
	restore, err := clone.PauseAutovacuum(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	var on int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')
		  AND NOT coalesce('autovacuum_enabled=false' = ANY (c.reloptions), false)`).Scan(&on); err != nil {
		t.Fatal(err)
	}
	if on != 0 {
		t.Errorf("%d tables still have autovacuum on: %s", on, options())
	}
	if _, err := conn.Exec(ctx, restore); err != nil {
		t.Fatalf("restore %q: %v", restore, err)
	}
	if after := options(); after != before {
		t.Errorf("options not restored:\nbefore %s\nafter  %s", before, after)
	}
}
