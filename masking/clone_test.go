package masking

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/jackc/pgx/v5"
)

// fixturePlan loads the fixture rules (fixtures/masking.yaml) against the fixture.
func fixturePlan(t *testing.T, ctx context.Context, env *dbEnv, key string) (*Plan, *Catalog) {
	t.Helper()
	cat, err := LoadCatalog(ctx, env.conn(t, ctx, env.src))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := LoadRules("../fixtures/masking.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(rules, cat, testKeyring(t, key))
	if err != nil {
		t.Fatal(err)
	}
	return plan, cat
}

// maskedClone clones the fixture database into a new database dst with the
// real copier (clone.Clone), masking in the COPY stream: the clone's
// post-data step then builds keys and foreign keys, which validates them
// over the masked rows.
func maskedClone(t *testing.T, ctx context.Context, env *dbEnv, dst string, plan *Plan, _ *Catalog) {
	t.Helper()
	res, err := clone.Clone(ctx, env.c.DSN(env.src), env.c.DSN(dst), clone.Options{Jobs: 2, Masker: plan})
	if err != nil {
		t.Fatalf("masked clone into %s: %v", dst, err)
	}
	masked := 0
	for _, tr := range res.Tables {
		if tr.Masked {
			masked++
		}
	}
	if masked == 0 {
		t.Fatalf("masked clone into %s streamed no table through the masker", dst)
	}
}

func testMaskedClone(t *testing.T, ctx context.Context, env *dbEnv) {
	// The unusual tenant (odd scripts, huge texts, extreme dates) must mask
	// without errors or leaks too.
	unusual := &dbEnv{c: env.c, src: env.unusual}
	uplan, ucat := fixturePlan(t, ctx, unusual, testKey)
	maskedClone(t, ctx, unusual, "masked_unusual", uplan, ucat)
	checkNoLeaks(t, ctx, unusual, "masked_unusual", ucat)

	plan, cat := fixturePlan(t, ctx, env, testKey)
	maskedClone(t, ctx, env, "masked_a", plan, cat)
	src := env.conn(t, ctx, env.src)
	dst := env.conn(t, ctx, "masked_a")

	checkNoLeaks(t, ctx, env, "masked_a", cat)

	// Joins on masked keys give the source's row counts.
	for _, q := range []string{
		`SELECT count(*) FROM orders o JOIN users u ON u.account_id = o.account_id AND u.id = o.user_id`,
		`SELECT count(*) FROM support_tickets s JOIN users u ON u.account_id = s.account_id AND u.id = s.user_id`,
		`SELECT count(*) FROM audit_log a JOIN users u ON u.id = a.actor_user_id`,
		`SELECT count(*) FROM payments p JOIN orders o ON o.account_id = p.account_id AND o.id = p.order_id`,
	} {
		var a, b int64
		if err := src.QueryRow(ctx, q).Scan(&a); err != nil {
			t.Fatal(err)
		}
		if err := dst.QueryRow(ctx, q).Scan(&b); err != nil {
			t.Fatal(err)
		}
		if a != b || a == 0 {
			t.Errorf("%s: source %d, clone %d", q, a, b)
		}
	}
	// The audit payload's actor id follows users.id.
	var mismatched int64
	if err := dst.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE payload->'actor'->>'id' IS NOT NULL AND (payload->'actor'->>'id')::bigint IS DISTINCT FROM actor_user_id`).Scan(&mismatched); err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 {
		t.Errorf("%d audit rows: payload actor.id differs from actor_user_id", mismatched)
	}
	// A ticket body quoting the user's e-mail quotes the same fake.
	var quoting, consistent int64
	if err := src.QueryRow(ctx, `SELECT count(*) FROM support_tickets s JOIN users u ON u.account_id = s.account_id AND u.id = s.user_id WHERE strpos(s.body, u.email) > 0`).Scan(&quoting); err != nil {
		t.Fatal(err)
	}
	if err := dst.QueryRow(ctx, `SELECT count(*) FROM support_tickets s JOIN users u ON u.account_id = s.account_id AND u.id = s.user_id WHERE strpos(s.body, u.email) > 0`).Scan(&consistent); err != nil {
		t.Fatal(err)
	}
	if quoting == 0 || consistent != quoting {
		t.Errorf("tickets quoting their user's e-mail: source %d, clone %d (the scrub must use the users.email domain)", quoting, consistent)
	}

	// Same key: byte-identical tables. Another key: different values.
	plan2, _ := fixturePlan(t, ctx, env, testKey)
	maskedClone(t, ctx, env, "masked_b", plan2, cat)
	plan3, _ := fixturePlan(t, ctx, env, otherKey)
	maskedClone(t, ctx, env, "masked_c", plan3, cat)
	digest := func(db, table string) string {
		var d string
		q := fmt.Sprintf(`SELECT md5(string_agg(t::text, E'\n' ORDER BY t::text)) FROM %s t`, table)
		if err := env.conn(t, ctx, db).QueryRow(ctx, q).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tb := range []string{"users", "payments", "support_tickets", "audit_log", "orders"} {
		if a, b := digest("masked_a", tb), digest("masked_b", tb); a != b {
			t.Errorf("%s: two runs with the same key differ", tb)
		}
		if a, c := digest("masked_a", tb), digest("masked_c", tb); a == c {
			t.Errorf("%s: a different key gave the same table", tb)
		}
	}
}

// checkNoLeaks fails when an original e-mail, phone, card number, IBAN or
// name of the fixture appears anywhere in the clone db: every table's rows
// as text, jsonb included.
func checkNoLeaks(t *testing.T, ctx context.Context, env *dbEnv, db string, cat *Catalog) {
	t.Helper()
	src := env.conn(t, ctx, env.src)
	dst := env.conn(t, ctx, db)
	originals := map[string][]string{}
	for what, q := range map[string]string{
		"email": `SELECT email FROM users UNION SELECT billing_email FROM accounts WHERE billing_email IS NOT NULL`,
		"phone": `SELECT phone FROM users WHERE phone IS NOT NULL`,
		"card":  `SELECT card_number FROM payments WHERE card_number IS NOT NULL`,
		"iban":  `SELECT iban FROM payments WHERE iban IS NOT NULL`,
		"name":  `SELECT full_name FROM users UNION SELECT card_holder FROM payments WHERE card_holder IS NOT NULL`,
	} {
		rows, err := src.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) == 0 {
			t.Fatalf("fixture has no %s values", what)
		}
		originals[what] = vals
	}
	var text strings.Builder
	for _, tb := range cat.Tables {
		if tb.Partitioned {
			continue
		}
		rows, err := dst.Query(ctx, fmt.Sprintf("SELECT t::text FROM %s t", pgx.Identifier{tb.Schema, tb.Name}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			text.WriteString(v)
			text.WriteByte('\n')
		}
	}
	all := text.String()
	for what, vals := range originals {
		leaked := 0
		for _, v := range vals {
			if len(v) >= 5 && strings.Contains(all, v) {
				leaked++
			}
		}
		t.Logf("%s: %s: %d original values checked, %d found in the clone", db, what, len(vals), leaked)
		if leaked > 0 {
			t.Errorf("%d original %s values appear in the masked clone", leaked, what)
		}
	}

}
