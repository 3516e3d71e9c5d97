package harness

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/dbtwin/dbtwin/compare"
	"github.com/jackc/pgx/v5"
)

// TestExplainGeneric checks that plans are generic (no constant of the
// statement in them), differ where the schema does, and that nothing is
// executed.
func TestExplainGeneric(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := localtest.Start(t)
	const schema = `CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
		INSERT INTO users SELECT i, 'user' || i || '@example.com' FROM generate_series(1, 5000) i;
		ANALYZE users;`
	for _, db := range []string{"b", "c"} {
		if err := c.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
		execSQL(t, ctx, c.DSN(db), schema)
	}
	execSQL(t, ctx, c.DSN("b"), "CREATE INDEX users_email_idx ON users (email)")

	rows := []compare.LatencyRow{
		{Fingerprint: "lookup", ExplainSQL: "SELECT id FROM users WHERE email = 'secret.person@example.com'"},
		{Fingerprint: "param", ExplainSQL: "SELECT id FROM users WHERE email = $1 AND id > 10"},
		{Fingerprint: "update", ExplainSQL: "UPDATE users SET email = 'leaked@example.com' WHERE id = 42"},
		{Fingerprint: "multi", ExplainSQL: "SELECT 1; SELECT 2"},
		{Fingerprint: "begin", ExplainSQL: "BEGIN"},
		{Fingerprint: "broken", ExplainSQL: "SELEKT nope"},
	}
	plans, notes, err := ExplainGeneric(ctx, c.DSN("b"), c.DSN("c"), rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, fp := range []string{"lookup", "param", "update"} {
		p, ok := plans[fp]
		if !ok {
			t.Errorf("%s: no plans", fp)
			continue
		}
		all := p.Baseline + "\n" + p.Candidate
		if strings.Contains(all, "example.com") || strings.Contains(all, "42") {
			t.Errorf("%s: a constant of the statement is in the plan:\n%s", fp, all)
		}
		if !paramRef.MatchString(p.Baseline) {
			t.Errorf("%s: not a generic plan:\n%s", fp, p.Baseline)
		}
	}
	if p := plans["lookup"]; !strings.Contains(p.Baseline, "users_email_idx") || !strings.Contains(p.Candidate, "Seq Scan") {
		t.Errorf("lookup: want the index on the baseline and a Seq Scan on the candidate:\n%s\n---\n%s", p.Baseline, p.Candidate)
	}
	if len(plans) != 3 {
		t.Errorf("want plans for 3 statements, got %d", len(plans))
	}
	joined := strings.Join(notes, "\n")
	for _, want := range []string{"no plan for multi: the text holds 2 statements", "no plan for begin: EXPLAIN does not take a TransactionStmt", "no plan for broken: the statement does not parse"} {
		if !strings.Contains(joined, want) {
			t.Errorf("notes lack %q:\n%s", want, joined)
		}
	}
	conn, err := pgx.Connect(ctx, c.DSN("c"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var email string
	if err := conn.QueryRow(ctx, "SELECT email FROM users WHERE id = 42").Scan(&email); err != nil || email != "user42@example.com" {
		t.Errorf("EXPLAIN executed the UPDATE: email %q, %v", email, err)
	}
}
