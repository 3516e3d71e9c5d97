package masking

import (
	"context"
	"strings"
	"testing"
)

func testAuditFixture(t *testing.T, ctx context.Context, env *dbEnv) {
	plan, cat := fixturePlan(t, ctx, env, testKey)
	maskedClone(t, ctx, env, "masked_audit", plan, cat)
	rep, err := Audit(ctx, env.c.DSN(env.src), env.c.DSN("masked_audit"), plan, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatalf("clean clone: %v", err)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		t.Logf("audit:\n%s", text.String())
	}
	byCol := map[string]LeakCheck{}
	for _, l := range rep.Columns {
		byCol[strings.TrimPrefix(l.Table, "public.")+"."+l.Column] = l
	}
	for _, c := range []string{"users.email", "users.phone", "users.full_name", "payments.card_number", "payments.iban", "support_tickets.body", "audit_log.payload"} {
		if l := byCol[c]; l.Sampled == 0 || l.Leaked != 0 || l.Skipped != "" {
			t.Errorf("%s: %s", c, l)
		}
	}
	if l := byCol["users.birth_date"]; l.Skipped == "" {
		t.Errorf("users.birth_date: shifted dates cannot be leak-audited, want it skipped: %s", l)
	}
	kinds := map[string]int{}
	for _, c := range rep.Constraints {
		kinds[c.Kind]++
	}
	if kinds["primary key"] < 9 || kinds["foreign key"] < 10 || kinds["reference"] != 1 {
		t.Errorf("constraints checked: %v", kinds)
	}

	// Break the clone: an original e-mail back in place, a dangling foreign
	// key and a duplicate key (constraints dropped first, as a clone masked
	// in place might have them).
	src := env.conn(t, ctx, env.src)
	var email string
	var id int64
	if err := src.QueryRow(ctx, `SELECT id, email FROM users ORDER BY id LIMIT 1`).Scan(&id, &email); err != nil {
		t.Fatal(err)
	}
	dst := env.conn(t, ctx, "masked_audit")
	if _, err := dst.Exec(ctx, `ALTER TABLE users DROP CONSTRAINT users_pkey CASCADE; ALTER TABLE users DROP CONSTRAINT users_account_id_id_key CASCADE`); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Exec(ctx, `UPDATE users SET email = $1 WHERE id = (SELECT max(id) FROM users)`, email); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Exec(ctx, `UPDATE users SET id = (SELECT min(id) FROM users) WHERE id = (SELECT max(id) FROM users)`); err != nil {
		t.Fatal(err)
	}
	rep, err = Audit(ctx, env.c.DSN(env.src), env.c.DSN("masked_audit"), plan, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = rep.Err()
	if err == nil {
		t.Fatal("broken clone: want an error")
	}
	for _, want := range []string{"primary key users_pkey on public.users: 1 violation(s)", "leak: public.users.email (domain customer_email):", "1 leaked"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), email) {
		t.Error("the audit error contains the leaked value")
	}
}
