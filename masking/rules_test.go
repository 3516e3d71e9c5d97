package masking

import (
	"errors"
	"strings"
	"testing"
)

// testCatalog is a small slice of the fixture schema, built by hand.
func testCatalog() *Catalog {
	col := func(name, typ string, notNull bool) *Column {
		return &Column{Name: name, Type: typ, Display: typ, NotNull: notNull}
	}
	accounts := &Table{Schema: "public", Name: "accounts",
		Columns:    []*Column{col("id", "int8", true), col("name", "text", true), col("billing_email", "text", false)},
		PrimaryKey: &Constraint{Name: "accounts_pkey", Columns: []string{"id"}}}
	users := &Table{Schema: "public", Name: "users",
		Columns: []*Column{col("id", "int8", true), col("account_id", "int8", true), col("email", "text", true),
			col("full_name", "text", true), col("phone", "text", false), {Name: "nickname", Type: "varchar", Display: "character varying(8)", MaxLen: 8},
			{Name: "email_lower", Type: "text", Generated: true}},
		PrimaryKey:  &Constraint{Name: "users_pkey", Columns: []string{"id"}},
		Uniques:     []*Constraint{{Name: "users_account_id_id_key", Columns: []string{"account_id", "id"}}, {Name: "users_email_key", Columns: []string{"email"}}},
		ForeignKeys: []*ForeignKey{{Name: "users_account_id_fkey", Columns: []string{"account_id"}, RefTable: "public.accounts", RefColumns: []string{"id"}}}}
	orders := &Table{Schema: "public", Name: "orders",
		Columns:    []*Column{col("id", "int8", true), col("account_id", "int8", true), col("user_id", "int4", true), col("notes", "text", false)},
		PrimaryKey: &Constraint{Name: "orders_pkey", Columns: []string{"id"}},
		ForeignKeys: []*ForeignKey{{Name: "orders_account_id_user_id_fkey", Columns: []string{"account_id", "user_id"},
			RefTable: "public.users", RefColumns: []string{"account_id", "id"}}}}
	audit := &Table{Schema: "public", Name: "audit_log", Partitioned: true,
		Columns: []*Column{col("id", "int8", true), col("actor_user_id", "int8", false), col("payload", "jsonb", true)}}
	audit1 := &Table{Schema: "public", Name: "audit_log_2024q1", Parent: "public.audit_log",
		Columns: []*Column{col("id", "int8", true), col("actor_user_id", "int8", false), col("payload", "jsonb", true)}}
	return NewCatalog([]*Table{accounts, users, orders, audit, audit1})
}

const goodRules = `version: 1
scrub_domains:
  email: customer_email
domains:
  customer_email: email
tables:
  accounts:
    id: keep
    name: {keep: "company names are public"}
    billing_email: {domain: customer_email}
  users:
    id: {mask: int, domain: user_id}
    email: {domain: customer_email}
    full_name: full_name
    phone: {mask: phone, keep_country_code: false}
    nickname: {mask: redact, keep_first: 1}
  orders:
    notes: scrub
    id: keep
  audit_log:
    id: keep
    payload:
      mask: jsonb
      scrub: true
      paths:
        $.actor.email: {domain: customer_email}
        $.actor.id: {mask: int, domain: user_id}
references:
  - from: audit_log.actor_user_id
    to: users.id
`

func TestPlanFromGoodRules(t *testing.T) {
	r, err := ParseRules("masking.yaml", []byte(goodRules))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(r, testCatalog(), testKeyring(t, testKey))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range p.Decisions() {
		s := d.Decision.Action.String()
		if d.Decision.Action == Mask {
			s += " " + d.Decision.Spec.Transform + "/" + d.Decision.Spec.DomainName()
		}
		got[d.Table+"."+d.Column] = s
	}
	want := map[string]string{
		"public.users.account_id":        "keep",             // closure from accounts.id
		"public.orders.account_id":       "keep",             // closure through the composite key
		"public.orders.user_id":          "mask int/user_id", // closure from users.id
		"public.audit_log.actor_user_id": "mask int/user_id", // declared reference
		"public.users.email_lower":       "keep",             // generated
		"public.accounts.billing_email":  "mask email/customer_email",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if p.Table("accounts") == nil || p.Table("public.users") == nil {
		t.Error("tables with masked columns need a masker")
	}
	if p.Table("audit_log_2024q1") != p.Table("audit_log") {
		t.Error("a partition must share its parent's masker")
	}
	// orders.user_id is int4, users.id int8: one domain, so one permutation
	// over the narrower type; both columns map alike.
	u, _ := p.Domain("user_id")
	o := p.Table("orders").cols["user_id"].t
	a, _ := u.Append(nil, []byte("12345"))
	b, _ := o.Append(nil, []byte("12345"))
	if string(a) != string(b) {
		t.Errorf("users.id and orders.user_id map 12345 differently: %s vs %s", a, b)
	}
	// users.email is unique, so the whole customer_email domain is bijective —
	// accounts.billing_email and the scrub of orders.notes included.
	e1, _ := p.Table("users").cols["email"].t.Append(nil, []byte("jo@x.com"))
	e2, _ := p.Table("accounts").cols["billing_email"].t.Append(nil, []byte("jo@x.com"))
	e3, _ := p.Table("orders").cols["notes"].t.Append(nil, []byte("mail jo@x.com now"))
	if string(e1) != string(e2) || !strings.Contains(string(e3), string(e1)) {
		t.Errorf("customer_email not consistent: %s, %s, %s", e1, e2, e3)
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"unknown transform", "version: 1\ntables:\n  users:\n    email: emial\n", `masking.yaml:4: table "users" column "email": unknown transform "emial"`},
		{"unknown transform in mapping", "version: 1\ntables:\n  users:\n    email: {mask: emial}\n", `masking.yaml:4: table "users" column "email": unknown transform "emial"`},
		{"unknown option", "version: 1\ntables:\n  users:\n    email:\n      mask: email\n      keep_last4: true\n", `masking.yaml:6: table "users" column "email": transform "email" has no option "keep_last4"`},
		{"no version", "tables: {}\n", "version: 1 is required"},
		{"bad version", "version: 2\n", `masking.yaml:1: version "2" is not supported`},
		{"bad unlisted", "version: 1\nunlisted: maybe\n", `masking.yaml:2: unlisted must be fail or keep`},
		{"unknown key", "version: 1\ntabels: {}\n", `masking.yaml:2: unknown key "tabels"`},
		{"empty decision", "version: 1\ntables:\n  users:\n    email:\n", `masking.yaml:4: table "users" column "email": no decision`},
		{"undeclared domain", "version: 1\ntables:\n  users:\n    email: {domain: nope}\n", `masking.yaml:4: table "users" column "email": domain "nope" is not declared`},
		{"keep and mask", "version: 1\ntables:\n  users:\n    email: {mask: email, keep: true}\n", `keep and mask exclude each other`},
		{"option on keep", "version: 1\ntables:\n  users:\n    email: {keep: x, percent: 3}\n", `"percent" applies only to masked columns`},
		{"bad path", "version: 1\ntables:\n  t:\n    p:\n      mask: jsonb\n      paths:\n        actor.email: email\n", `masking.yaml:7: table "t" column "p": path "actor.email": must start with $`},
		{"duplicate column", "version: 1\ntables:\n  users:\n    email: keep\n    email: keep\n", `masking.yaml:5: table "users" column "email" listed twice (first at line 4)`},
		{"bad reference", "version: 1\nreferences:\n  - {from: a, to: b.c}\n", `masking.yaml:3: reference a → b.c`},
		{"mask without transform", "version: 1\ntables:\n  users:\n    email: mask\n", `mask needs a transform`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules("masking.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant it to contain %s", err, tc.want)
			}
		})
	}
}

func TestPlanErrors(t *testing.T) {
	base := `version: 1
tables:
  accounts: {id: keep, name: keep, billing_email: keep}
  audit_log: {id: keep, actor_user_id: keep, payload: keep}
`
	tests := []struct {
		name, users string
		want        []string
	}{
		{"fail closed lists each undecided column",
			"  users: {id: keep, email: email}\n",
			[]string{"3 column(s) have no masking decision", "public.users.full_name", "public.users.phone", "public.users.nickname"}},
		{"colliding transform on a unique column",
			"  users: {id: keep, email: full_name, full_name: keep, phone: keep, nickname: keep}\n",
			[]string{`masking.yaml:5: table "users" column "email": transform "full_name" on a key or unique column: transform can collide`}},
		{"conflicting ends of a foreign key",
			"  users: {id: {mask: int, domain: uid}, email: email, full_name: keep, phone: keep, nickname: keep}\n  orders: {id: keep, notes: keep, user_id: {mask: int, domain: other}}\n",
			[]string{"conflicting rules on the two ends of foreign key orders_account_id_user_id_fkey", "public.orders.user_id", "public.users.id"}},
		{"mask on one end only",
			"  users: {id: {mask: int}, email: email, full_name: keep, phone: keep, nickname: keep}\n  orders: {id: keep, notes: keep, user_id: keep}\n",
			[]string{"conflicting rules on the two ends of foreign key", `masks with "int" in domain "int"`, "is keep"}},
		{"one domain two transforms",
			"  users: {id: keep, email: {mask: email, domain: d}, full_name: {mask: full_name, domain: d}, phone: keep, nickname: keep}\n",
			[]string{`domain "d" is masked with "full_name"`, "one domain, one transform"}},
		{"null on not null",
			"  users: {id: keep, email: null, full_name: keep, phone: keep, nickname: keep}\n",
			[]string{`masking.yaml:5: table "users" column "email": null on a NOT NULL column`}},
		{"missing column",
			"  users: {id: keep, email: keep, full_name: keep, phone: keep, nickname: keep, shoe_size: keep}\n",
			[]string{`table "users" column "shoe_size" does not exist`}},
		{"generated column",
			"  users: {id: keep, email: keep, full_name: keep, phone: keep, nickname: keep, email_lower: email}\n",
			[]string{`column "email_lower" is generated`}},
		{"wrong type",
			"  users: {id: email, email: keep, full_name: keep, phone: keep, nickname: keep}\n",
			[]string{`table "users" column "id": transform "email" does not apply to type int8`}},
		{"template reads a missing column",
			"  users: {id: keep, email: keep, full_name: keep, phone: keep, nickname: {mask: template, template: \"{{nope}}@x.com\"}}\n",
			[]string{`reads column "nope"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extra := tc.users
			if !strings.Contains(extra, "orders:") {
				extra += "  orders: {id: keep, notes: keep}\n"
			}
			r, err := ParseRules("masking.yaml", []byte(base+extra))
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewPlan(r, testCatalog(), testKeyring(t, testKey))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if tc.name == "fail closed lists each undecided column" {
				var pe *PlanError
				if !errors.As(err, &pe) || len(pe.Undecided) != 3 {
					t.Errorf("want a *PlanError with 3 undecided columns, got %#v", err)
				}
			}
		})
	}
}

func TestPlanUnlistedKeepAndDefaults(t *testing.T) {
	r, err := ParseRules("masking.yaml", []byte(`version: 1
unlisted: keep
defaults:
  - {name: "*email*", mask: email}
  - {type: jsonb, mask: jsonb, scrub: true}
  - {name: full_name, table: "use*", mask: full_name}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(r, testCatalog(), testKeyring(t, testKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range p.Decisions() {
		want := "keep"
		switch d.Table + "." + d.Column {
		case "public.users.email", "public.accounts.billing_email":
			want = "mask"
		case "public.users.full_name", "public.audit_log.payload":
			want = "mask"
		}
		if d.Decision.Action.String() != want {
			t.Errorf("%s.%s: %s (%s), want %s", d.Table, d.Column, d.Decision.Action, d.Decision.Source, want)
		}
	}
}
