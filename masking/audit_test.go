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
	// The same address inside a partition of the partitioned audit log,
	// whose partitions are read in separate sessions.
	if _, err := dst.Exec(ctx, `UPDATE audit_log SET payload = payload || jsonb_build_object('email', $1::text) WHERE id = (SELECT min(id) FROM audit_log)`, email); err != nil {
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
		"leak: public.audit_log.payload (domain public.audit_log.payload):"} {
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

func TestByChance(t *testing.T) {
	tests := []struct {
		name    string
		scanned int64
		sampled int
		bits    float64
		want    bool
	}{
		// The case that failed clean clones of the 856 MB fixture: 185,000
		// masked addresses that keep their first 8 bits against 1,800
		// sampled originals meet about 20 times by chance.
		{"IPv4 /8 kept, 185,000 rows", 185_000, 1_800, 24, true},
		{"int4 ids, 185,000 rows", 185_000, 3_400, 31, true},
		{"int8 ids, 10 million rows", 10_000_000, 1_000, 63, false},
		{"16-digit cards keeping one digit", 1_000_000, 1_000, 14 * math.Log2(10), false},
		{"IPv4 /8 kept, 10 rows", 10, 10, 24, false},
		{"e-mail addresses under reserved domains", 1 << 40, 1 << 20, math.Inf(1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := byChance(tt.scanned, tt.sampled, tt.bits); got != tt.want {
				t.Errorf("byChance(%d, %d, %.1f) = %v, want %v", tt.scanned, tt.sampled, tt.bits, got, tt.want)
			}
		})
	}
}
