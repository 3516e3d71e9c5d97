package clone_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5"
)

func TestDropStaleTemps(t *testing.T) {
	ctx := context.Background()
	c := localtest.Start(t)
	stale := "app" + clone.TempDatabaseMarker + "dead0001"
	busy := "app" + clone.TempDatabaseMarker + "live0002"
	for _, db := range []string{stale, busy, "customer"} {
		if err := c.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	// A session on the busy one stands for a clone that is still running.
	conn, err := pgx.Connect(ctx, c.DSN(busy))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	dropped, err := clone.DropStaleTemps(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || dropped[0] != stale {
		t.Fatalf("dropped %v, want [%s]", dropped, stale)
	}
	var left string
	mc, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close(ctx)
	if err := mc.QueryRow(ctx, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(left, stale) || !strings.Contains(left, busy) || !strings.Contains(left, "customer") {
		t.Errorf("databases after DropStaleTemps: %s", left)
	}
}
