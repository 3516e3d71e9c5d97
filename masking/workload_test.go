package masking

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/replay"
)

func strp(s string) *string { return &s }

func TestMaskEvent(t *testing.T) {
	p := testPlan(t, `version: 1
unlisted: keep
tables:
  users:
    id: {mask: int, domain: user_id}
    email: email
    full_name: full_name
    nickname: {mask: template, template: "{{full_name | first}}"}
`)
	email := p.Table("users").cols["email"].t
	uid := p.Table("users").cols["id"].t
	m := func(tr Transform, v string) string { return apply(t, tr, v) }
	tests := []struct {
		name, sql string
		params    []string
		wantSQL   string
		wantPar   []string
	}{
		{"param equality", "SELECT * FROM users WHERE email = $1", []string{"jo@x.com"},
			"SELECT * FROM users WHERE email = $1", []string{m(email, "jo@x.com")}},
		{"literal, alias, lower()", "SELECT u.id FROM users u WHERE lower(u.email) = lower('Jo@X.com')", nil,
			"SELECT u.id FROM users u WHERE lower(u.email) = lower('" + m(email, "Jo@X.com") + "')", nil},
		{"IN list and cast", "select 1 from public.users where email in ('a@b.c', 'o''brien@x.ie'::text) and id = 42", nil,
			"select 1 from public.users where email in ('" + m(email, "a@b.c") + "', '" + strings.ReplaceAll(m(email, "o'brien@x.ie"), "'", "''") + "'::text) and id = " + m(uid, "42"), nil},
		{"reversed operands and join", "SELECT * FROM orders o JOIN users u ON u.id = o.user_id WHERE $1 = u.id AND o.user_id = $1", []string{"7"},
			"SELECT * FROM orders o JOIN users u ON u.id = o.user_id WHERE $1 = u.id AND o.user_id = $1", []string{m(uid, "7")}},
		{"insert values", "INSERT INTO users (id, account_id, email, full_name) VALUES (5, 1, 'n@x.com', $1), (6, 1, E'e\\'s@x.com', 'Ann Lee')", []string{"Bob Stone"},
			"INSERT INTO users (id, account_id, email, full_name) VALUES (" + m(uid, "5") + ", 1, '" + m(email, "n@x.com") + "', $1), (" + m(uid, "6") + ", 1, '" + strings.ReplaceAll(m(email, "e's@x.com"), "'", "''") + "', '" + m(p.Table("users").cols["full_name"].t, "Ann Lee") + "')",
			[]string{m(p.Table("users").cols["full_name"].t, "Bob Stone")}},
		{"update set and where", "UPDATE users SET email = $1 WHERE id = $2", []string{"new@x.com", "9"},
			"UPDATE users SET email = $1 WHERE id = $2", []string{m(email, "new@x.com"), m(uid, "9")}},
		{"untouched columns", "SELECT * FROM users WHERE phone = '123' AND account_id = 5 AND nickname = 'x'", nil,
			"SELECT * FROM users WHERE phone = '123' AND account_id = 5 AND nickname = 'x'", nil},
		{"several statements", "SELECT 1 FROM users WHERE email = 'a@b.c'; SELECT 2 FROM users WHERE email = 'd@e.f'", nil,
			"SELECT 1 FROM users WHERE email = '" + m(email, "a@b.c") + "'; SELECT 2 FROM users WHERE email = '" + m(email, "d@e.f") + "'", nil},
		{"NULL param stays NULL", "SELECT 1 FROM users WHERE email = $1", []string{"\x00null"},
			"SELECT 1 FROM users WHERE email = $1", []string{"\x00null"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := &replay.Event{Kind: replay.KindStatement, SQL: tc.sql}
			for _, v := range tc.params {
				if v == "\x00null" {
					ev.Params = append(ev.Params, replay.Param{})
				} else {
					ev.Params = append(ev.Params, replay.Param{Value: strp(v)})
				}
			}
			if _, err := p.MaskEvent(ev); err != nil {
				t.Fatal(err)
			}
			if ev.SQL != tc.wantSQL {
				t.Errorf("SQL:\n got %s\nwant %s", ev.SQL, tc.wantSQL)
			}
			for i, w := range tc.wantPar {
				got := ev.Params[i].Value
				if w == "\x00null" {
					if got != nil {
						t.Errorf("$%d: NULL changed", i+1)
					}
					continue
				}
				if got == nil || *got != w {
					t.Errorf("$%d = %v, want %s", i+1, got, w)
				}
			}
		})
	}
	_, err := p.MaskEvent(&replay.Event{Kind: replay.KindStatement, SQL: "SELEC secret@x.com", Source: "pg.log:7"})
	if !errors.Is(err, ErrUnparsable) || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "pg.log:7") {
		t.Errorf("unparsable statement: %v", err)
	}
	res, err := p.MaskEvent(&replay.Event{Kind: replay.KindStatement, SQL: "SELECT 1 FROM users WHERE email = ANY($1)", Params: []replay.Param{{Value: strp("{a@b.c}")}}})
	if err != nil || len(res.Skipped) != 1 {
		t.Errorf("array parameter: want it skipped and said so, got %+v, %v", res, err)
	}
}

func FuzzScanLiteral(f *testing.F) {
	f.Add("x = 'a''b' and y = E'c\\'d' and z = -5", 4)
	f.Fuzz(func(t *testing.T, sql string, loc int) {
		start, end, _, _, ok := scanLiteral(sql, loc)
		if ok && (start != loc || end <= start || end > len(sql)) {
			t.Fatalf("bad extent %d..%d", start, end)
		}
	})
}

// testWorkloadFixture replays captured lookups, masked, against a masked
// clone: they must find what the original statements find on the source.
func testWorkloadFixture(t *testing.T, ctx context.Context, env *dbEnv) {
	plan, cat := fixturePlan(t, ctx, env, testKey)
	maskedClone(t, ctx, env, "masked_w", plan, cat)
	src := env.conn(t, ctx, env.src)
	dst := env.conn(t, ctx, "masked_w")
	var id int64
	var email, email2, phone string
	if err := src.QueryRow(ctx, `SELECT id, email, phone FROM users WHERE phone IS NOT NULL AND EXISTS (SELECT 1 FROM orders o WHERE o.user_id = users.id) ORDER BY id LIMIT 1`).Scan(&id, &email, &phone); err != nil {
		t.Fatal(err)
	}
	if err := src.QueryRow(ctx, `SELECT email FROM users WHERE id <> $1 ORDER BY id LIMIT 1`, id).Scan(&email2); err != nil {
		t.Fatal(err)
	}
	idText := strconv.FormatInt(id, 10)
	events := []*replay.Event{
		{SQL: `SELECT count(*) FROM users WHERE email = $1`, Params: []replay.Param{{Value: strp(email)}}},
		{SQL: `SELECT count(*) FROM users u JOIN orders o ON o.account_id = u.account_id AND o.user_id = u.id WHERE lower(u.email) = lower('` + strings.ReplaceAll(email, "'", "''") + `')`},
		{SQL: `SELECT count(*) FROM users WHERE email IN ($1, '` + strings.ReplaceAll(email2, "'", "''") + `')`, Params: []replay.Param{{Value: strp(email)}}},
		{SQL: `SELECT count(*) FROM orders WHERE user_id = ` + idText},
		{SQL: `SELECT count(*) FROM users WHERE phone = $1 AND id = $2`, Params: []replay.Param{{Value: strp(phone)}, {Value: strp(idText)}}},
		{SQL: `SELECT count(*) FROM audit_log WHERE actor_user_id = $1`, Params: []replay.Param{{Value: strp(idText)}}},
	}
	for _, ev := range events {
		orig := *ev
		orig.Params = append([]replay.Param(nil), ev.Params...)
		var want, got, unmasked int64
		if err := src.QueryRow(ctx, ev.SQL, params(ev)...).Scan(&want); err != nil {
			t.Fatal(err)
		}
		ev.Kind = replay.KindStatement
		res, err := plan.MaskEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := dst.QueryRow(ctx, ev.SQL, params(ev)...).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if err := dst.QueryRow(ctx, orig.SQL, params(&orig)...).Scan(&unmasked); err != nil {
			t.Fatal(err)
		}
		if want == 0 || got != want {
			t.Errorf("%d literal(s), %d param(s) masked: source finds %d rows, the masked statement on the clone %d (skipped: %v)", res.Literals, res.Params, want, got, res.Skipped)
		}
		if unmasked == want && strings.Contains(orig.SQL, "email") {
			t.Errorf("%s: the unmasked statement also finds its %d rows on the clone: the e-mails were not masked", orig.SQL[:40], unmasked)
		}
	}
}

func params(ev *replay.Event) []any {
	out := make([]any, len(ev.Params))
	for i, p := range ev.Params {
		if p.Value != nil {
			out[i] = *p.Value
		}
	}
	return out
}
