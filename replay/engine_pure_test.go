package replay

import "testing"

func TestEngineIsPureRead(t *testing.T) {
	tests := []struct {
		sql  string
		want bool
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 42;", true},
		{"  -- comment\n/* block /* nested */ */ select 1", true},
		{"SELECT id, name FROM t WHERE id IN (1, 2) AND (x = 'a;b' OR y = $1) ORDER BY id", true},
		{"SELECT count(*), max(x)::numeric(10,2), coalesce(a, 'x') FROM t GROUP BY b HAVING sum(c) > 1", true},
		{"SELECT * FROM (SELECT a FROM t) s JOIN u USING (a)", true},
		{`SELECT "weird;name" FROM t`, true},
		{"SELECT E'it\\'s' FROM t", true},
		{"BEGIN", false}, // fixes now() for the transaction: ordered
		{"begin isolation level repeatable read;", false},
		{"START TRANSACTION", false},
		{"SELECT 1; ", true},

		{"SELECT * FROM t FOR UPDATE", false},
		{"SELECT * FROM t WHERE id = 1 for no key update", false},
		{"SELECT * FROM t FOR SHARE", false},
		{"SELECT * INTO newt FROM t", false},
		{"SELECT nextval('s')", false},
		{"SELECT my_func(1)", false},
		{`SELECT "MyFunc"(1)`, false},
		{"SELECT pg_advisory_lock(1)", false},
		{"SELECT now()", false},
		{"SELECT $$x$$", false},
		{"SELECT 1; DELETE FROM t", false},
		{"SELECT 'unterminated", false},
		{"BEGIN; UPDATE t SET x = 1", false},
		{"START TRANSACTION ISOLATION LEVEL REPEATABLE READ, SNAPSHOT '0001'", false},
		{"UPDATE t SET x = 1", false},
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", false},
		{"COMMIT", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := engineIsPureRead(tt.sql); got != tt.want {
			t.Errorf("engineIsPureRead(%q) = %v, want %v", tt.sql, got, tt.want)
		}
	}
}
