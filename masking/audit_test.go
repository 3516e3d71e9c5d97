package masking

import (
	"context"
	"math"
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
	// The clone's own keys stand for the counts when trusted, and only
	// then.
	trusted, err := Audit(ctx, env.c.DSN(env.src), env.c.DSN("masked_audit"), plan, AuditOptions{TrustConstraints: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := trusted.Err(); err != nil {
		t.Fatalf("clean clone, constraints trusted: %v", err)
	}
	enforced := func(r *AuditReport) (n int) {
		for _, c := range r.Constraints {
			if c.Enforced {
				n++
			}
		}
		return n
	}
	if n := enforced(rep); n != 0 {
		t.Errorf("constraints not trusted: %d reported enforced", n)
	}
	if n := enforced(trusted); n != len(trusted.Constraints)-1 {
		// All but the reference the rules declare, which no constraint holds.
		t.Errorf("constraints trusted: %d of %d reported enforced, want all but the declared reference", n, len(trusted.Constraints))
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
	// Postcodes put back as they were, row by row, where the clone's row
	// is the one its masked key names: what the row-by-row check is for,
	// in a space small enough for chance to matter (5 digits).
	ra := newRowAligner(plan, plan.cat.Table("public.users"))
	pcs, err := src.Query(ctx, `SELECT id::text, postal_code FROM users WHERE postal_code IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	var ids, postcodes []string
	for pcs.Next() {
		var id, pc string
		if err := pcs.Scan(&id, &pc); err != nil {
			t.Fatal(err)
		}
		ck, ok := ra.cloneKey([]string{id})
		if !ok {
			t.Fatalf("users key %s has no clone key", id)
		}
		ids, postcodes = append(ids, ck[0]), append(postcodes, pc)
	}
	if err := pcs.Err(); err != nil || len(ids) < 2 {
		t.Fatalf("source postcodes: %d, %v", len(ids), err)
	}
	if _, err := dst.Exec(ctx, `UPDATE users u SET postal_code = p.v FROM unnest($1::bigint[], $2::text[]) AS p(id, v) WHERE u.id = p.id`, ids, postcodes); err != nil {
		t.Fatal(err)
	}
	// The same address inside a partition of the partitioned audit log,
	// whose partitions are read in separate sessions.
	if _, err := dst.Exec(ctx, `UPDATE audit_log SET payload = payload || jsonb_build_object('email', $1::text) WHERE id = (SELECT min(id) FROM audit_log)`, email); err != nil {
		t.Fatal(err)
	}
	// And in free text, where only the scrub's search of the text finds it.
	if _, err := dst.Exec(ctx, `UPDATE support_tickets SET body = body || ' Please write to ' || $1 || ' instead.' WHERE id = (SELECT min(id) FROM support_tickets)`, email); err != nil {
		t.Fatal(err)
	}
	// Trusted or not, a key the clone lost is counted.
	rep, err = Audit(ctx, env.c.DSN(env.src), env.c.DSN("masked_audit"), plan, AuditOptions{TrustConstraints: true})
	if err != nil {
		t.Fatal(err)
	}
	err = rep.Err()
	if err == nil {
		t.Fatal("broken clone: want an error")
	}
	for _, want := range []string{"primary key users_pkey on public.users: 1 violation(s)", "leak: public.users.email (domain customer_email):", "1 leaked",
		"leak: public.audit_log.payload (domain public.audit_log.payload):",
		"leak: public.support_tickets.body (domain public.support_tickets.body):",
		"leak: public.users.postal_code (domain postcode):"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), email) {
		t.Error("the audit error contains the leaked value")
	}
}

func TestOutputSpaceBits(t *testing.T) {
	no := false
	tests := []struct {
		name string
		spec Spec
		x    string
		want float64
	}{
		{"IPv4 keeping 8 bits", Spec{Transform: "ip", Options: Options{KeepPrefix: 8}}, "10.1.2.3", 24},
		{"IPv6 keeping 64 bits", Spec{Transform: "ip", Options: Options{KeepPrefix6: 64}}, "2001:db8::1", 64},
		{"int4 permutation", Spec{Transform: "int", intType: "int4"}, "42", 31},
		{"int8 permutation", Spec{Transform: "int", intType: "int8"}, "42", 63},
		{"phone keeping its country code", Spec{Transform: "phone"}, "+1 555 010 9999", 8 * math.Log2(10)},
		{"phone, country code masked too", Spec{Transform: "phone", Options: Options{KeepCountryCode: &no}}, "+1 555 010 9999", 11 * math.Log2(10)},
		{"card keeping its first digit", Spec{Transform: "card", Options: Options{KeepFirst: 1}}, "4111 1111 1111 1111", 14 * math.Log2(10)},
		{"card keeping six and four", Spec{Transform: "card", Options: Options{KeepFirst: 6, KeepLast4: true}}, "4111111111111111", 5 * math.Log2(10)},
		{"IBAN", Spec{Transform: "iban"}, "DE89 3704 0044 0532 0130 00", 18 * math.Log2(10)},
		{"5-digit postcode", Spec{Transform: "postcode"}, "12345", 5 * math.Log2(10)},
		{"UK postcode, letters and digits", Spec{Transform: "postcode"}, "SW1A 1AA", 2*math.Log2(10) + 5*math.Log2(26)},
		{"national id, separators kept", Spec{Transform: "national_id"}, "123-45-6789", 9 * math.Log2(10)},
		{"fpe over an alphabet", Spec{Transform: "fpe", Options: Options{Alphabet: "0123456789ABCDEF"}}, "00FF-1a", 5 * 4},
		{"e-mail under a reserved domain", Spec{Transform: "email"}, "a@b.c", math.Inf(1)},
		{"uuid", Spec{Transform: "uuid"}, "7f1d0f5e-8a34-4d8e-9b8a-6f1c2d3e4f50", math.Inf(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outputSpaceBits(tt.spec, []byte(tt.x)); math.Abs(got-tt.want) > 1e-9 && got != tt.want {
				t.Errorf("outputSpaceBits = %.2f, want %.2f", got, tt.want)
			}
		})
	}
}

func TestChanceExplains(t *testing.T) {
	tests := []struct {
		name     string
		found    int
		expected float64
		want     bool
	}{
		{"nothing found", 0, 0, true},
		// The case that failed clean clones of the 856 MB fixture: 185,000
		// masked addresses that keep their first 8 bits against 1,800
		// sampled originals meet about 20 times by chance.
		{"IPv4 /8 kept, 185,000 rows, 2 found", 2, 185_000 * 1_800 / (1 << 24), true},
		{"IPv4 /8 kept, 185,000 rows, 900 found: a column left as it was", 900, 185_000 * 1_800 / (1 << 24), false},
		// A keyed permutation of 5-digit postcodes leaves one in 100,000
		// as it is: 1,000 sampled rows meet one such once in 100 audits.
		{"postcode fixed point, 1,000 rows sampled", 1, 1_000 / 1e5, true},
		{"two postcode fixed points", 2, 1_000 / 1e5, false},
		{"unmasked postcodes", 1_000, 1_000 / 1e5, false},
		{"e-mail under a reserved domain found elsewhere", 1, 0, false},
		{"16-digit card numbers keeping one digit", 1, 1e6 * 1e3 / 1e14, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chanceExplains(tt.found, tt.expected); got != tt.want {
				t.Errorf("chanceExplains(%d, %g) = %v, want %v", tt.found, tt.expected, got, tt.want)
			}
		})
	}
	// P(X >= 3) for X ~ Poisson(2) is 1 - e^-2 (1 + 2 + 2).
	if got, want := poissonTail(3, 2), 1-5*math.Exp(-2); math.Abs(got-want) > 1e-12 {
		t.Errorf("poissonTail(3, 2) = %v, want %v", got, want)
	}
}
