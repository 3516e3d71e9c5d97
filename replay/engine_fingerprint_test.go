package replay

import "testing"

func TestStatementShape(t *testing.T) {
	same := [][2]string{
		{"UPDATE a SET b = b + -4586 WHERE id = 12", "UPDATE a SET b = b + -1 WHERE id = 99999"},
		{"SELECT * FROM t WHERE name = 'x' AND n IN (1, 2)", "SELECT * FROM t WHERE name = 'it''s' AND n IN (3, 4)"},
		{"SELECT 1.5", "SELECT 2.25"},
	}
	for _, p := range same {
		a, okA := statementShape(p[0])
		b, okB := statementShape(p[1])
		if !okA || !okB || a != b {
			t.Errorf("shapes of %q and %q: %q, %q; want equal", p[0], p[1], a, b)
		}
	}
	different := [][2]string{
		{"SELECT * FROM t1", "SELECT * FROM t2"},
		{`SELECT "col 1" FROM t`, `SELECT "col 2" FROM t`},
		{"SELECT $1", "SELECT $2"},
		{"SELECT x FROM t WHERE a = 1", "SELECT x FROM t WHERE b = 1"},
		{"SELECT 'a' || b", "SELECT 'a', b"},
	}
	for _, p := range different {
		a, _ := statementShape(p[0])
		b, _ := statementShape(p[1])
		if a == b {
			t.Errorf("shapes of %q and %q are both %q; want different", p[0], p[1], a)
		}
	}
	for _, sql := range []string{`SELECT E'a\'b'`, "SELECT $$x$$", "SELECT 'unterminated"} {
		if _, ok := statementShape(sql); ok {
			t.Errorf("statementShape(%q) ok; want bypass", sql)
		}
	}
}

// The cache gives the fingerprint the parser gives, calling it once per
// shape.
func TestFingerprintCache(t *testing.T) {
	calls := 0
	c := newFingerprintCache(func(sql string) string { calls++; return "fp:" + sql }, 2)
	if got := c.get("SELECT 1"); got != "fp:SELECT 1" {
		t.Errorf("first get = %q", got)
	}
	if got := c.get("SELECT 2"); got != "fp:SELECT 1" || calls != 1 {
		t.Errorf("same shape: %q after %d calls", got, calls)
	}
	c.get("SELECT 'x'")
	c.get("SELECT a")  // over max: the cache starts again
	c.get("SELECT $$") // bypass
	if calls != 4 {
		t.Errorf("%d parser calls, want 4", calls)
	}
}
