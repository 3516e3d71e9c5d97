package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/dbtwin/dbtwin/fixtures"
	"github.com/jackc/pgx/v5"
)

// TestMaskEndToEnd drives mask scan, clone --mask and mask workload through
// the CLI on a fixture tenant: the scan names PII without printing it, the
// masked clone holds no original e-mail and passes its audit, and a
// captured lookup by a real e-mail, masked with the same key, finds its row
// on the masked clone.
func TestMaskEndToEnd(t *testing.T) {
	ctx := context.Background()
	c := localtest.Start(t)
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "masking.yaml")
	if err := os.WriteFile(rulesPath, fixtures.MaskingRules(), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := dbtwin(t, "fixtures", "gen", "--target", c.DSN("postgres"), "--tenants", "1", "--scale", "0.002", "--log-level", "warn"); code != 0 {
		t.Fatalf("fixtures gen: %s", stderr)
	}
	src := c.DSN("tenant_acme")
	conn, err := pgx.Connect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	var email string
	if err := conn.QueryRow(ctx, "SELECT email FROM users ORDER BY id LIMIT 1").Scan(&email); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx) // a template copy of the source comes later

	// scan: proposes rules for the PII columns, never prints a value.
	code, stdout, stderr := dbtwin(t, "mask", "scan", "--source", src)
	if code != 0 {
		t.Fatalf("mask scan: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"users", "email", "card_number", "iban"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("scan output lacks %q", want)
		}
	}
	if strings.Contains(stdout, email) {
		t.Errorf("scan output contains a sampled e-mail")
	}

	// clone --mask needs the key.
	t.Setenv("DBTWIN_MASK_KEY", "")
	code, _, stderr = dbtwin(t, "clone", "--source", src, "--target", c.DSN("masked"), "--mask", rulesPath, "--log-level", "warn")
	if code != 2 || !strings.Contains(stderr, "DBTWIN_MASK_KEY") {
		t.Fatalf("clone --mask without a key: exit %d, stderr %q", code, stderr)
	}
	// A rules file that leaves a column undecided fails, naming it.
	partial := filepath.Join(dir, "partial.yaml")
	if err := os.WriteFile(partial, []byte("version: 1\ntables:\n  users:\n    id: keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DBTWIN_MASK_KEY", "test-key-0123456789abcdef")
	code, _, stderr = dbtwin(t, "clone", "--source", src, "--target", c.DSN("masked"), "--mask", partial, "--log-level", "warn")
	if code != 2 || !strings.Contains(stderr, "users.email") {
		t.Fatalf("clone with an incomplete rules file: exit %d, stderr %q; want users.email named", code, stderr)
	}

	code, stdout, stderr = dbtwin(t, "clone", "--source", src, "--target", c.DSN("masked"), "--mask", rulesPath, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("clone --mask: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "masking audit") || !strings.Contains(stdout, "0 leaked") {
		t.Errorf("clone --mask does not report its audit:\n%s", stdout)
	}
	if strings.Contains(stdout+stderr, "test-key-0123456789abcdef") {
		t.Error("the masking key appears in the output")
	}
	mconn, err := pgx.Connect(ctx, c.DSN("masked"))
	if err != nil {
		t.Fatal(err)
	}
	defer mconn.Close(ctx)
	var leaked int
	if err := mconn.QueryRow(ctx, "SELECT count(*) FROM users WHERE email = $1", email).Scan(&leaked); err != nil {
		t.Fatal(err)
	}
	if leaked != 0 {
		t.Fatal("the masked clone still holds an original e-mail")
	}

	// mask apply: an unmasked copy in the sandbox is masked in place; the
	// same database seen through a state directory that does not know the
	// sandbox is refused untouched.
	if err := c.CreateDatabaseFromTemplate(ctx, "snapshot", "tenant_acme"); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = dbtwin(t, "mask", "apply", "--target", c.DSN("snapshot"), "--rules", rulesPath, "--state-dir", t.TempDir(), "--log-level", "warn")
	if code != 2 || !strings.Contains(stderr, "not a dbtwin sandbox") {
		t.Fatalf("mask apply outside a known sandbox: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr = dbtwin(t, "mask", "apply", "--target", c.DSN("snapshot"), "--rules", rulesPath, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("mask apply: exit %d\n%s\n%s", code, stdout, stderr)
	}
	sconn, err := pgx.Connect(ctx, c.DSN("snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close(ctx)
	if err := sconn.QueryRow(ctx, "SELECT count(*) FROM users WHERE email = $1", email).Scan(&leaked); err != nil {
		t.Fatal(err)
	}
	if leaked != 0 {
		t.Fatal("mask apply left an original e-mail in place")
	}

	// mask workload: the captured lookup by the real e-mail finds the row.
	in := filepath.Join(dir, "workload.jsonl")
	workload := `{"dbtwin_workload":1,"source":"test"}
{"seq":1,"session":"s1","time":"2026-01-01T00:00:00Z","kind":"connect","database":"tenant_acme"}
{"seq":2,"session":"s1","time":"2026-01-01T00:00:01Z","kind":"statement","sql":"SELECT id FROM users WHERE email = $1","params":[{"value":"` + email + `"}]}
{"seq":3,"session":"s1","time":"2026-01-01T00:00:02Z","kind":"statement","sql":"SELECT id FROM users WHERE email = '` + email + `'"}
`
	if err := os.WriteFile(in, []byte(workload), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "masked.jsonl")
	code, stdout, stderr = dbtwin(t, "mask", "workload", "--rules", rulesPath, "--schema", src, "--in", in, "--out", out)
	if code != 0 {
		t.Fatalf("mask workload: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "1 literals and 1 parameters masked") {
		t.Errorf("mask workload summary: %s", stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), email) {
		t.Fatal("the masked workload still holds the original e-mail")
	}
	// Replaying the masked lookups on the masked clone finds the user.
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var ev struct {
		SQL    string `json:"sql"`
		Params []struct {
			Value *string `json:"value"`
		} `json:"params"`
	}
	if err := json.Unmarshal([]byte(lines[2]), &ev); err != nil || len(ev.Params) != 1 {
		t.Fatalf("masked event 2: %v %s", err, lines[2])
	}
	var found int
	if err := mconn.QueryRow(ctx, "SELECT count(*) FROM users WHERE email = $1", *ev.Params[0].Value).Scan(&found); err != nil {
		t.Fatal(err)
	}
	if found != 1 {
		t.Errorf("the masked parameter finds %d users on the masked clone, want 1", found)
	}
	if err := json.Unmarshal([]byte(lines[3]), &ev); err != nil {
		t.Fatal(err)
	}
	if err := mconn.QueryRow(ctx, "SELECT count(*) FROM ("+ev.SQL+") q").Scan(&found); err != nil || found != 1 {
		t.Errorf("the masked literal lookup %q finds %d users (err %v), want 1", ev.SQL, found, err)
	}

	// workload convert: a real PostgreSQL log to JSONL, with a summary.
	code, stdout, stderr = dbtwin(t, "workload", "convert", "--in", "../../replay/testdata/logs/csvlog-both.csv", "--out", filepath.Join(dir, "w.jsonl"))
	if code != 0 || !strings.Contains(stdout, "statements") {
		t.Fatalf("workload convert: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, _ = dbtwin(t, "workload", "convert", "--in", "../../replay/testdata/logs/csvlog-both.csv", "--out", filepath.Join(dir, "w2.jsonl"),
		"--to", "2000-01-01T00:00:00Z")
	if code != 0 || !strings.Contains(stdout, "statements    0") {
		t.Errorf("workload convert --to before the capture kept statements: exit %d\n%s", code, stdout)
	}
	code, _, stderr = dbtwin(t, "workload", "convert", "--in", "/no/such.log", "--out", filepath.Join(dir, "x.jsonl"))
	if code != 2 || !strings.Contains(stderr, "/no/such.log") {
		t.Fatalf("workload convert of a missing file: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.jsonl")); !os.IsNotExist(err) {
		t.Error("a failed convert left an output file")
	}
}
