package masking

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func testScanFixture(t *testing.T, ctx context.Context, env *dbEnv) {
	rep, err := Scan(ctx, env.c.DSN(env.src), ScanOptions{SampleRows: 500})
	if err != nil {
		t.Fatal(err)
	}
	cols := map[string]*ColumnReport{}
	for _, tb := range rep.Tables {
		for _, c := range tb.Columns {
			cols[strings.TrimPrefix(tb.Table, "public.")+"."+c.Column] = c
		}
	}
	// Every PII column of the fixture schema is found and proposed masked.
	for name, kind := range map[string]PIIKind{
		"accounts.billing_email":           KindEmail,
		"users.email":                      KindEmail,
		"users.full_name":                  KindPersonName,
		"users.phone":                      KindPhone,
		"users.birth_date":                 KindBirthDate,
		"users.street":                     KindAddress,
		"users.city":                       KindCity,
		"users.postal_code":                KindPostcode,
		"users.last_login_ip":              KindIP,
		"orders.shipping_address":          "",
		"payments.card_number":             KindCard,
		"payments.card_holder":             KindPersonName,
		"payments.iban":                    KindIBAN,
		"support_tickets.body":             KindFreeText,
		"ticket_status_history.changed_by": KindEmail,
		"audit_log.ip":                     KindIP,
		"audit_log.payload":                KindJSON,
	} {
		c := cols[name]
		if c == nil {
			t.Errorf("%s: not in the report", name)
			continue
		}
		if c.Kind == "" || c.Confidence.rank() < Medium.rank() || c.Proposal == "keep" || kind != "" && c.Kind != kind {
			t.Errorf("%s: got %s %s (proposal %s; %s), want %s", name, c.Confidence, c.Kind, c.Proposal, strings.Join(c.Reasons, "; "), kind)
		}
	}
	for _, name := range []string{"users.id", "orders.total", "orders.status", "products.price", "order_items.quantity", "accounts.plan"} {
		if c := cols[name]; c == nil || c.Proposal != "keep" {
			t.Errorf("%s: want keep, got %+v", name, c)
		}
	}
	if p := cols["audit_log.payload"]; !strings.Contains(p.Proposal, `"$..email": email`) {
		t.Errorf("audit_log.payload: want a path for the actor's e-mail, got %s", p.Proposal)
	}

	// Nothing sampled is printed: no original value in any rendering.
	var yml, js, md bytes.Buffer
	if err := rep.WriteRules(&yml); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		t.Logf("proposed rules:\n%s\n%s", yml.String(), md.String())
	}
	if !json.Valid(js.Bytes()) {
		t.Error("JSON report is not valid JSON")
	}
	src := env.conn(t, ctx, env.src)
	rows, err := src.Query(ctx, `SELECT v FROM (
		SELECT email AS v FROM users UNION SELECT phone FROM users UNION SELECT full_name FROM users
		UNION SELECT street FROM users UNION SELECT card_number FROM payments UNION SELECT iban FROM payments
		UNION SELECT host(last_login_ip) FROM users) s WHERE v IS NOT NULL AND length(v) >= 6`)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"rules": yml.String(), "json": js.String(), "markdown": md.String()} {
		for _, v := range vals {
			if strings.Contains(out, v) {
				t.Errorf("the %s output contains a sampled value", name)
				break
			}
		}
	}

	// The proposal is a valid rules file that decides every column.
	rules, err := ParseRules("proposed.yaml", yml.Bytes())
	if err != nil {
		t.Fatalf("proposed rules do not parse: %v\n%s", err, yml.String())
	}
	cat, err := LoadCatalog(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan(rules, cat, testKeyring(t, testKey))
	if err != nil {
		t.Fatalf("proposed rules do not make a plan: %v\n%s", err, yml.String())
	}
	if err := plan.CheckReasons(rep); err != nil {
		t.Errorf("the proposal itself keeps a high-confidence column: %v", err)
	}

	// A run refuses high-confidence PII kept without a reason.
	for _, tc := range []struct {
		keep string
		ok   bool
	}{{"keep", false}, {`{keep: "test data, consented"}`, true}} {
		text := strings.Replace(yml.String(), "    email: email", "    email: "+tc.keep, 1)
		r, err := ParseRules("masking.yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewPlan(r, cat, testKeyring(t, testKey))
		if err != nil {
			t.Fatal(err)
		}
		err = p.CheckReasons(rep)
		if tc.ok != (err == nil) || err != nil && !strings.Contains(err.Error(), "public.users.email (email") {
			t.Errorf("users.email %s: CheckReasons = %v", tc.keep, err)
		}
	}
}
