package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/dbtwin/dbtwin/clone/server"
	"github.com/jackc/pgx/v5"
)

func TestServerSandbox(t *testing.T) {
	ctx := context.Background()
	c := localtest.Start(t)
	// A database that belongs to someone else must survive everything.
	if err := c.CreateDatabase(ctx, "customer_app"); err != nil {
		t.Fatal(err)
	}

	s, err := server.Open(ctx, server.Config{DSN: c.DSN("postgres"), RunID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(ctx) })
	if !strings.HasPrefix(s.Physical("golden"), "dbtwin_t1_") {
		t.Fatalf("physical name %q lacks the run prefix", s.Physical("golden"))
	}
	if err := s.CreateDatabase(ctx, "golden"); err != nil {
		t.Fatal(err)
	}
	run(t, s.DSN("golden"), "CREATE TABLE t AS SELECT 42 AS answer")
	if err := s.CreateDatabaseFromTemplate(ctx, "baseline", "golden"); err != nil {
		t.Fatal(err)
	}
	var answer int
	conn, err := pgx.Connect(ctx, s.DSN("baseline"))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT answer FROM t").Scan(&answer); err != nil || answer != 42 {
		t.Fatalf("template copy: answer=%d err=%v", answer, err)
	}
	conn.Close(ctx)

	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := databases(t, c.DSN("postgres"))
	if strings.Contains(got, "dbtwin_t1_") {
		t.Errorf("Close left databases behind: %s", got)
	}
	if !strings.Contains(got, "customer_app") {
		t.Errorf("Close dropped a database it did not create: %s", got)
	}
}

func TestServerSandboxUnreachable(t *testing.T) {
	_, err := server.Open(context.Background(), server.Config{DSN: "host=127.0.0.1 port=1 user=x password=hunter2 dbname=y connect_timeout=2"})
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error does not say where: %v", err)
	}
}

func run(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

func databases(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database").Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
