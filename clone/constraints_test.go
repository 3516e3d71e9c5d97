package clone_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestCloneConstraints: a CHECK constraint or foreign key the source has
// validated, on unmasked tables, reaches a superuser's clone validated
// without a check of its rows; every other one is checked. Each source
// holds a row that breaks a validated constraint (a child without its
// parent, written with the key's triggers off as a replica's apply would;
// a price below zero, from before its CHECK was marked valid), so a check
// that runs fails the clone and one that does not leaves the row in it.
func TestCloneConstraints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := localtest.Start(t)
	const schema = `
CREATE TABLE parent (id int PRIMARY KEY, region text NOT NULL, UNIQUE (region, id));
CREATE TABLE child (id int PRIMARY KEY, note text, parent_id int REFERENCES parent (id));
CREATE SCHEMA "Ledger";
CREATE TABLE "Ledger"."Entry" (id int PRIMARY KEY, region text, parent_id int,
    CONSTRAINT "Entry's parent" FOREIGN KEY (region, parent_id) REFERENCES parent (region, id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE loose (id int PRIMARY KEY, parent_id int);
CREATE TABLE gadget (id int PRIMARY KEY, label text, price numeric CHECK (price >= 0), sku text,
    CONSTRAINT "sku shape" CHECK (sku ~ '^[A-Z]{3}-[0-9]+$') NO INHERIT);
CREATE TABLE base (id int, v int CONSTRAINT positive CHECK (v > 0));
CREATE TABLE sub () INHERITS (base);
INSERT INTO parent SELECT g, 'r' || g % 7 FROM generate_series(1, 1000) g;
INSERT INTO child SELECT g, 'n' || g, g % 1000 + 1 FROM generate_series(1, 5000) g;
INSERT INTO "Ledger"."Entry" SELECT g, 'r' || g % 7, g FROM generate_series(1, 1000) g;
INSERT INTO loose VALUES (1, 1), (2, 424242);
ALTER TABLE loose ADD CONSTRAINT loose_parent FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID;
INSERT INTO gadget SELECT g, 'g' || g, g, 'ABC-' || g FROM generate_series(1, 2000) g;
INSERT INTO sub SELECT g, g FROM generate_series(1, 100) g;`
	for db, broken := range map[string]string{
		"src_fk": `SET session_replication_role = replica;
INSERT INTO child VALUES (999999, 'orphan', 424242);
RESET session_replication_role;`,
		"src_check": `ALTER TABLE gadget DROP CONSTRAINT gadget_price_check;
INSERT INTO gadget VALUES (999999, 'refund', -1, 'XYZ-1');
ALTER TABLE gadget ADD CONSTRAINT gadget_price_check CHECK (price >= 0) NOT VALID;
UPDATE pg_constraint SET convalidated = true WHERE conname = 'gadget_price_check';`,
	} {
		if err := c.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		exec1(t, ctx, c.DSN(db), schema+broken)
	}
	exec1(t, ctx, c.DSN("postgres"), `CREATE ROLE builder LOGIN CREATEDB`)
	// What a check that runs says, for each source.
	violation := map[string]string{
		"src_fk":    `violates foreign key constraint "child_parent_id_fkey"`,
		"src_check": `violates check constraint "gadget_price_check"`,
	}

	for _, tt := range []struct {
		name string
		opts clone.Options
		user string // the target role; "" the cluster's superuser
		// checked: the clone checks the broken constraints, and so fails.
		checked bool
	}{
		{name: "superuser target takes the source's constraints"},
		{name: "ValidateConstraints checks them", opts: clone.Options{ValidateConstraints: true}, checked: true},
		{name: "target role not a superuser checks them", user: "builder", checked: true},
		{name: "a masked table's constraints are checked", checked: true,
			opts: clone.Options{Masker: &lineMasker{tables: []string{"public.child", "public.gadget"}}}},
	} {
		for _, src := range []string{"src_fk", "src_check"} {
			t.Run(tt.name+"/"+src, func(t *testing.T) {
				opts := tt.opts
				opts.Jobs, opts.Logger = 2, testLogger(t)
				name := strings.ReplaceAll(tt.name, " ", "_")[:12] + "_" + src
				dst := c.DSN(name)
				if tt.user != "" {
					dst += " user=" + tt.user
				}
				_, err := clone.Clone(ctx, c.DSN(src), dst, opts)
				if tt.checked {
					if err == nil || !strings.Contains(err.Error(), violation[src]) {
						t.Fatalf("Clone: err = %v; want the check to fail: %s", err, violation[src])
					}
					noTempDatabases(t, ctx, c)
					if databaseExists(t, ctx, c, name) {
						t.Errorf("failed clone left database %s", name)
					}
					return
				}
				if err != nil {
					t.Fatalf("Clone: %v", err)
				}
				compareSchemas(t, ctx, c, src, name)
				compareFingerprints(t, fingerprint(t, ctx, c.DSN(src)), fingerprint(t, ctx, dst))

				var valid string
				queryRow(t, ctx, dst, `SELECT string_agg(conname || '=' || convalidated, ' ' ORDER BY conname)
					FROM pg_constraint WHERE contype IN ('c', 'f') AND conrelid <> 0`, nil, &valid)
				want := "Entry's parent=true child_parent_id_fkey=true gadget_price_check=true loose_parent=false positive=true positive=true sku shape=true"
				if valid != want {
					t.Errorf("constraints on the clone: %s; want %s", valid, want)
				}
				// The constraints taken as valid are enforced like any other.
				for _, tc := range []struct{ sql, code string }{
					{`INSERT INTO child VALUES (1000000, 'x', 777777)`, "23503"},
					{`INSERT INTO "Ledger"."Entry" VALUES (1000000, 'r1', 777777)`, "23503"},
					{`INSERT INTO gadget VALUES (1000000, 'x', -5, 'ABC-1')`, "23514"},
					{`INSERT INTO gadget VALUES (1000001, 'x', 5, 'nope')`, "23514"},
					{`INSERT INTO sub VALUES (1, -1)`, "23514"},
				} {
					err := execErr(ctx, dst, tc.sql)
					var pgErr *pgconn.PgError
					if !errors.As(err, &pgErr) || pgErr.Code != tc.code {
						t.Errorf("%s on the clone: err = %v; want SQLSTATE %s", tc.sql, err, tc.code)
					}
				}
				// ON DELETE CASCADE came along.
				exec1(t, ctx, dst, `DELETE FROM child WHERE parent_id = 5; DELETE FROM parent WHERE id = 5`)
				var left int
				queryRow(t, ctx, dst, `SELECT count(*) FROM "Ledger"."Entry" WHERE parent_id = 5`, nil, &left)
				if left != 0 {
					t.Errorf("deleting a parent left %d entries; want the key's ON DELETE CASCADE", left)
				}
			})
		}
	}
}
