package masking

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/dbtwin/dbtwin/fixtures"
)

// TestApplyInPlace masks an unmasked clone of a fixture tenant in place and
// compares it with a clone masked in the COPY stream. The subtests run in
// order on one cluster: the refusals and the failing rules first (each must
// leave the clone exactly as it was), then the real thing.
func TestApplyInPlace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL sandbox")
	}
	c := localtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.CreateDatabase(ctx, "src"); err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.Fill(ctx, c.DSN("src"), fixtures.Tenant{Name: "src", Database: "src", Shape: fixtures.ShapeNormal, Scale: 0.004}, 1); err != nil {
		t.Fatalf("fill fixture: %v", err)
	}
	env := &dbEnv{c: c, src: "src"}
	// The fixture's materialized view holds no PII; this one is nothing but.
	if _, err := env.conn(t, ctx, "src").Exec(ctx, `CREATE MATERIALIZED VIEW user_directory AS
		SELECT u.id, u.email, u.full_name, u.phone, a.billing_email FROM users u JOIN accounts a ON a.id = u.account_id`); err != nil {
		t.Fatal(err)
	}
	streamedPlan, _ := fixturePlan(t, ctx, env, testKey)
	if _, err := clone.Clone(ctx, c.DSN("src"), c.DSN("streamed"), clone.Options{Jobs: 2, Masker: streamedPlan}); err != nil {
		t.Fatalf("masked clone: %v", err)
	}
	if _, err := clone.Clone(ctx, c.DSN("src"), c.DSN("inplace"), clone.Options{Jobs: 2}); err != nil {
		t.Fatalf("unmasked clone: %v", err)
	}
	rules, err := os.ReadFile("testdata/fixture_masking.yaml")
	if err != nil {
		t.Fatal(err)
	}
	before := checksums(t, ctx, env, "inplace")
	unchanged := func(t *testing.T) {
		t.Helper()
		after := checksums(t, ctx, env, "inplace")
		for rel, sum := range before {
			if after[rel] != sum {
				t.Errorf("%s changed although mask apply failed", rel)
			}
		}
	}

	t.Run("Refuse", func(t *testing.T) {
		// A server that is not registered in the state directory consulted
		// is, as far as dbtwin can tell, a server it did not start: an empty
		// state directory, or one whose only cluster lives elsewhere (the
		// shared state directory of the machine is left alone).
		empty := t.TempDir()
		other := t.TempDir()
		rec := c.Record()
		rec.Name, rec.Dir = "dbtwin-elsewhere", filepath.Join(other, "dbtwin-elsewhere")
		writeRecord(t, other, rec)
		for _, dir := range []string{empty, other} {
			ok, why, err := IsSandbox(ctx, c.DSN("inplace"), dir)
			if err != nil || ok || !strings.Contains(why, "is in none of the") {
				t.Errorf("IsSandbox with state dir %s = %v, %q, %v; want false with the reason", dir, ok, why, err)
			}
		}
		// The cluster's own record, copied: accepted by its data directory
		// (and system identifier).
		same := t.TempDir()
		writeRecord(t, same, c.Record())
		if ok, why, err := IsSandbox(ctx, c.DSN("inplace"), same); err != nil || !ok || !strings.Contains(why, c.Name()) {
			t.Errorf("IsSandbox with the cluster's record = %v, %q, %v; want true naming %s", ok, why, err, c.Name())
		}

		_, err := ApplyInPlace(ctx, c.DSN("inplace"), targetPlan(t, ctx, env, "inplace", string(rules), testKey), ApplyOptions{StateDir: empty})
		if !errors.Is(err, ErrNotSandbox) || !strings.Contains(err.Error(), "clone it first with dbtwin clone --mask") {
			t.Errorf("ApplyInPlace on a database that is not a sandbox: %v; want ErrNotSandbox saying what to do", err)
		}
		unchanged(t)

		// The marker, for clones made outside clone/local.
		if err := c.CreateDatabase(ctx, "marked"); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := IsSandbox(ctx, c.DSN("marked"), empty); err != nil || ok {
			t.Fatalf("IsSandbox before MarkSandbox = %v, %v; want false", ok, err)
		}
		if err := MarkSandbox(ctx, c.DSN("marked"), "run-42'x"); err != nil {
			t.Fatal(err)
		}
		if ok, why, err := IsSandbox(ctx, c.DSN("marked"), empty); err != nil || !ok || !strings.Contains(why, "dbtwin-sandbox run=run-42'x") {
			t.Errorf("IsSandbox after MarkSandbox = %v, %q, %v; want true by the marker", ok, why, err)
		}
	})

	t.Run("FailMidway", func(t *testing.T) {
		emails := originals(t, ctx, env, `SELECT email FROM users`)
		for _, bc := range []struct{ name, from, to, want string }{
			// The masker's own check: "12/27" becomes "12/2027", which
			// char(5) cannot hold. payments comes after accounts,
			// audit_log and orders, which are rewritten by then.
			{"transform", `card_expiry: {keep: "month and year only"}`, `card_expiry: {mask: regex, pattern: "/", replace: "/20"}`, "card_expiry"},
			// The server's check: the email_address domain wants an "@".
			// users is the last table rewritten.
			{"server", "\n    email: {domain: customer_email}", "\n    email: {mask: regex, pattern: \"@\", replace: \" at \"}", "email_address"},
		} {
			broken := strings.Replace(string(rules), bc.from, bc.to, 1)
			if broken == string(rules) {
				t.Fatalf("%s: rule %q not found in the fixture rules", bc.name, bc.from)
			}
			_, err := ApplyInPlace(ctx, c.DSN("inplace"), targetPlan(t, ctx, env, "inplace", broken, testKey), ApplyOptions{})
			if err == nil || !strings.Contains(err.Error(), bc.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("%s: ApplyInPlace = %v; want an error naming %s, rolled back", bc.name, err, bc.want)
			}
			t.Logf("%s: %v", bc.name, err)
			for _, e := range emails {
				if strings.Contains(err.Error(), e) {
					t.Errorf("%s: the error shows an original value", bc.name)
				}
			}
		}
		unchanged(t)
	})

	t.Run("Guards", func(t *testing.T) {
		// A trigger that fires even in replica mode would see the unmasked
		// rows; a referencing column left to a default that references
		// nothing breaks a foreign key the rewrite bypassed. Both roll back.
		if err := c.CreateDatabase(ctx, "guards"); err != nil {
			t.Fatal(err)
		}
		conn := env.conn(t, ctx, "guards")
		if _, err := conn.Exec(ctx, `
CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE child (id int PRIMARY KEY, pid int DEFAULT 999 REFERENCES parent, note text);
INSERT INTO parent VALUES (1, 'Alice Original'), (2, 'Bob Original');
INSERT INTO child VALUES (1, 1, 'x'), (2, 2, 'y');
CREATE FUNCTION keep_old() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$;
CREATE TRIGGER keep_old AFTER DELETE ON parent FOR EACH ROW EXECUTE FUNCTION keep_old();
ALTER TABLE parent ENABLE ALWAYS TRIGGER keep_old;`); err != nil {
			t.Fatal(err)
		}
		guardsBefore := checksums(t, ctx, env, "guards")
		apply := func(rules string) error {
			_, err := ApplyInPlace(ctx, c.DSN("guards"), targetPlan(t, ctx, env, "guards", rules, testKey), ApplyOptions{})
			return err
		}
		const rules = "version: 1\ntables:\n  parent: {id: keep, name: full_name}\n  child: {id: keep, pid: %s, note: keep}\n"
		err := apply(fmt.Sprintf(rules, "keep"))
		if err == nil || !strings.Contains(err.Error(), "trigger keep_old on parent") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("ApplyInPlace with an ENABLE ALWAYS trigger = %v; want the trigger named, rolled back", err)
		}
		if _, err := conn.Exec(ctx, "ALTER TABLE parent DISABLE TRIGGER keep_old"); err != nil {
			t.Fatal(err)
		}
		err = apply(fmt.Sprintf(rules, "default"))
		if err == nil || !strings.Contains(err.Error(), "foreign key child_pid_fkey on public.child: 2 violation(s)") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("ApplyInPlace breaking a foreign key = %v; want the key named, rolled back", err)
		}
		after := checksums(t, ctx, env, "guards")
		for rel, sum := range guardsBefore {
			if after[rel] != sum {
				t.Errorf("%s changed although mask apply failed", rel)
			}
		}
	})

	t.Run("Apply", func(t *testing.T) {
		emails := originals(t, ctx, env, `SELECT email FROM users UNION SELECT billing_email FROM accounts WHERE billing_email IS NOT NULL`)
		if n := emailsInFiles(t, ctx, env, "inplace", emails); n == 0 {
			t.Fatal("no original e-mail found in the unmasked clone's files: the file scan sees nothing")
		}
		plan := targetPlan(t, ctx, env, "inplace", string(rules), testKey)
		rep, err := ApplyInPlace(ctx, c.DSN("inplace"), plan, ApplyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := rep.WriteText(&out); err != nil {
			t.Fatal(err)
		}
		t.Log("\n" + out.String())

		// What the report says.
		src := env.conn(t, ctx, "src")
		for _, at := range rep.Tables {
			var n int64
			if err := src.QueryRow(ctx, "SELECT count(*) FROM ONLY "+at.Table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != at.Rows {
				t.Errorf("%s: report says %d rows masked, the source has %d", at.Table, at.Rows, n)
			}
		}
		if len(rep.Tables) < 8 || rep.Rows == 0 {
			t.Errorf("report: %d tables, %d rows; want every masked table", len(rep.Tables), rep.Rows)
		}
		if strings.Join(rep.MatViews, ",") != "public.monthly_revenue,public.user_directory" {
			t.Errorf("refreshed materialized views %v; want both", rep.MatViews)
		}
		fks := 0
		for _, ck := range rep.Constraints {
			if ck.Kind == "foreign key" {
				fks++
			}
			if ck.Violations != 0 {
				t.Errorf("%s %s on %s: %d violations", ck.Kind, ck.Name, ck.Table, ck.Violations)
			}
		}
		if fks < 5 {
			t.Errorf("%d foreign keys checked; want those of every masked table", fks)
		}

		// Byte-identical to the clone masked in the stream.
		got, want := checksums(t, ctx, env, "inplace"), checksums(t, ctx, env, "streamed")
		if len(got) != len(want) {
			t.Errorf("%d relations in place, %d streamed", len(got), len(want))
		}
		for rel, sum := range want {
			if got[rel] != sum {
				t.Errorf("%s: masked in place differs from masked in the stream", rel)
			}
		}

		// No original value anywhere, the materialized view included.
		cat, err := LoadCatalog(ctx, env.conn(t, ctx, "inplace"))
		if err != nil {
			t.Fatal(err)
		}
		checkNoLeaks(t, ctx, env, "inplace", NewCatalog(append(cat.Tables, &Table{Schema: "public", Name: "user_directory"})))
		// Nor in the database's files: old row versions, index entries and
		// statistics are gone.
		if n := emailsInFiles(t, ctx, env, "inplace", emails); n != 0 {
			t.Errorf("%d original e-mails still in the files of the masked database", n)
		}

		// Keys and foreign keys: still declared, still valid, and holding
		// (the audit also samples the source for leaks).
		q := `SELECT count(*) FILTER (WHERE convalidated), count(*) FROM pg_constraint WHERE contype IN ('p', 'u', 'f') AND connamespace = 'public'::regnamespace`
		var sv, sn, dv, dn int
		if err := src.QueryRow(ctx, q).Scan(&sv, &sn); err != nil {
			t.Fatal(err)
		}
		if err := env.conn(t, ctx, "inplace").QueryRow(ctx, q).Scan(&dv, &dn); err != nil {
			t.Fatal(err)
		}
		if sn == 0 || dv != sv || dn != sn {
			t.Errorf("constraints: source %d (%d validated), masked %d (%d validated)", sn, sv, dn, dv)
		}
		audit, err := Audit(ctx, c.DSN("src"), c.DSN("inplace"), plan, AuditOptions{SampleRows: 200})
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.Err(); err != nil {
			t.Error(err)
		}
	})
}

// targetPlan builds a plan from rules against db's own catalog, as
// `dbtwin mask apply` does.
func targetPlan(t *testing.T, ctx context.Context, env *dbEnv, db, rules, key string) *Plan {
	t.Helper()
	cat, err := LoadCatalog(ctx, env.conn(t, ctx, db))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseRules("fixture_masking.yaml", []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(rs, cat, testKeyring(t, key))
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// checksums returns, per table and materialized view of db, the md5 of its
// rows as text in sorted order.
func checksums(t *testing.T, ctx context.Context, env *dbEnv, db string) map[string]string {
	t.Helper()
	conn := env.conn(t, ctx, db)
	rows, err := conn.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	rels, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, rel := range rels {
		var sum string
		if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) || ':' || md5(COALESCE(string_agg(t::text, E'\n' ORDER BY t::text), '')) FROM %s t`, rel)).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		out[rel] = sum
	}
	return out
}

func originals(t *testing.T, ctx context.Context, env *dbEnv, q string) []string {
	t.Helper()
	rows, err := env.conn(t, ctx, env.src).Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) == 0 {
		t.Fatalf("no values: %s", q)
	}
	return vals
}

// emailsInFiles counts the e-mails found in the files of db's directory in
// the cluster (base/<oid>: tables, indexes, TOAST, the database's catalogs
// and statistics), after a checkpoint. Uncompressed values only: a value
// compressed inside a long text is not seen.
func emailsInFiles(t *testing.T, ctx context.Context, env *dbEnv, db string, emails []string) int {
	t.Helper()
	conn := env.conn(t, ctx, "postgres")
	var oid uint32
	if err := conn.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = $1", db).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		t.Fatal(err)
	}
	byAt := map[int][]string{} // offset of the @ → e-mails
	for _, e := range emails {
		if i := strings.IndexByte(e, '@'); i >= 0 {
			byAt[i] = append(byAt[i], e)
		}
	}
	found := map[string]bool{}
	dir := filepath.Join(env.c.Record().DataDir(), "base", fmt.Sprint(oid))
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil // dropped meanwhile
		}
		if err != nil {
			return err
		}
		for p := bytes.IndexByte(b, '@'); p >= 0; {
			for i, es := range byAt {
				for _, e := range es {
					if p-i >= 0 && p-i+len(e) <= len(b) && string(b[p-i:p-i+len(e)]) == e {
						found[e] = true
					}
				}
			}
			next := bytes.IndexByte(b[p+1:], '@')
			if next < 0 {
				break
			}
			p += next + 1
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(found)
}

// writeRecord registers rec in the state directory dir, as clone/local
// does (<dir>/<name>.json).
func writeRecord(t *testing.T, dir string, rec local.Record) {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, rec.Name+".json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}
