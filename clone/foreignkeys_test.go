package clone_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestCloneForeignKeys: a key the source has validated, between unmasked
// tables, reaches a superuser's clone validated without a check of its
// rows; every other key is checked. The source holds a row that breaks a
// validated key (written with the key's triggers off, as a replica's
// apply would), so a check that runs fails the clone and one that does not
// leaves the row in it.
func TestCloneForeignKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := localtest.Start(t)
	if err := c.CreateDatabase(ctx, "src"); err != nil {
		t.Fatal(err)
	}
	src := c.DSN("src")
	exec1(t, ctx, src, `
CREATE TABLE parent (id int PRIMARY KEY, region text NOT NULL, UNIQUE (region, id));
CREATE TABLE child (id int PRIMARY KEY, note text, parent_id int REFERENCES parent (id));
CREATE SCHEMA "Ledger";
CREATE TABLE "Ledger"."Entry" (id int PRIMARY KEY, region text, parent_id int,
    CONSTRAINT "Entry's parent" FOREIGN KEY (region, parent_id) REFERENCES parent (region, id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE loose (id int PRIMARY KEY, parent_id int);
INSERT INTO parent SELECT g, 'r' || g % 7 FROM generate_series(1, 1000) g;
INSERT INTO child SELECT g, 'n' || g, g % 1000 + 1 FROM generate_series(1, 5000) g;
INSERT INTO "Ledger"."Entry" SELECT g, 'r' || g % 7, g FROM generate_series(1, 1000) g;
INSERT INTO loose VALUES (1, 1), (2, 424242);
ALTER TABLE loose ADD CONSTRAINT loose_parent FOREIGN KEY (parent_id) REFERENCES parent (id) NOT VALID;
SET session_replication_role = replica;
INSERT INTO child VALUES (999999, 'orphan', 424242);
RESET session_replication_role;
CREATE ROLE builder LOGIN CREATEDB;`)

	const broken = "child_parent_id_fkey"
	for _, tt := range []struct {
		name string
		dst  string
		opts clone.Options
		// checked: the clone checks child's key, and so fails on the orphan.
		checked bool
	}{
		{name: "superuser target takes the source's keys", dst: "trusting"},
		{name: "--validate-foreign-keys checks them", dst: "validating",
			opts: clone.Options{ValidateForeignKeys: true}, checked: true},
		{name: "target role not a superuser checks them", dst: "builder_clone",
			checked: true},
		{name: "a masked table's keys are checked", dst: "masked",
			opts: clone.Options{Masker: &lineMasker{tables: []string{"public.child"}}}, checked: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Jobs, tt.opts.Logger = 2, testLogger(t)
			dst := c.DSN(tt.dst)
			if tt.dst == "builder_clone" {
				dst += " user=builder"
			}
			_, err := clone.Clone(ctx, src, dst, tt.opts)
			if tt.checked {
				if err == nil || !strings.Contains(err.Error(), `violates foreign key constraint "`+broken+`"`) {
					t.Fatalf("Clone: err = %v; want the check of %s to fail on the orphan row", err, broken)
				}
				noTempDatabases(t, ctx, c)
				if databaseExists(t, ctx, c, tt.dst) {
					t.Errorf("failed clone left database %s", tt.dst)
				}
				return
			}
			if err != nil {
				t.Fatalf("Clone: %v", err)
			}
			compareSchemas(t, ctx, c, "src", tt.dst)
			compareFingerprints(t, fingerprint(t, ctx, src), fingerprint(t, ctx, dst))

			var valid string
			queryRow(t, ctx, dst, `SELECT string_agg(conname || '=' || convalidated, ' ' ORDER BY conname)
				FROM pg_constraint WHERE contype = 'f'`, nil, &valid)
			if want := "Entry's parent=true child_parent_id_fkey=true loose_parent=false"; valid != want {
				t.Errorf("foreign keys on the clone: %s; want %s", valid, want)
			}
			// The keys taken as valid are enforced like any other.
			for _, sql := range []string{
				`INSERT INTO child VALUES (1000000, 'x', 777777)`,
				`INSERT INTO "Ledger"."Entry" VALUES (1000000, 'r1', 777777)`,
			} {
				err := execErr(ctx, dst, sql)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "23503" {
					t.Errorf("%s on the clone: err = %v; want a foreign key violation (23503)", sql, err)
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
