package sqlinfo

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want Info // Fingerprint is checked separately
	}{
		{"empty", "", Info{Class: Other}},
		{"comment only", "-- nothing\n", Info{Class: Other}},
		{"select", "SELECT id FROM t WHERE id = 1",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}}},
		{"select order by", "SELECT id FROM t ORDER BY id LIMIT 10",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}, HasOrderBy: true}},
		{"limit without order", "SELECT id FROM t LIMIT 10",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}, LimitWithoutOrder: true}},
		{"offset without order", "SELECT id FROM t OFFSET 5",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}, LimitWithoutOrder: true}},
		{"fetch first without order", "SELECT id FROM t FETCH FIRST 3 ROWS ONLY",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}, LimitWithoutOrder: true}},
		{"nested limit without order", "DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT 10)",
			Info{Class: Write, Statements: 1, Types: []string{"DeleteStmt"}, LimitWithoutOrder: true}},
		{"order by only in subquery", "SELECT * FROM (SELECT id FROM t ORDER BY id) s",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}}},
		{"union with order", "SELECT 1 UNION ALL SELECT 2 ORDER BY 1",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}, HasOrderBy: true}},
		{"values", "VALUES (1), (2)",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}}},
		{"volatile", "SELECT now(), random(), pg_catalog.NOW(), nextval('s'), gen_random_uuid(), clock_timestamp(), statement_timestamp(), txid_current(), CURRENT_TIMESTAMP, current_date, age(d) FROM t",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}, Volatile: []string{
				"age", "clock_timestamp", "current_date", "current_timestamp", "gen_random_uuid",
				"nextval", "now", "random", "statement_timestamp", "txid_current"}}},
		{"age with two args is stable", "SELECT age(a, b) FROM t",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}}},
		{"now literal", "SELECT 'now'::timestamptz",
			Info{Class: Read, Statements: 1, Types: []string{"SelectStmt"}, Volatile: []string{"'now'"}}},
		{"insert", "INSERT INTO t VALUES ($1, $2) RETURNING id",
			Info{Class: Write, Statements: 1, Types: []string{"InsertStmt"}}},
		{"insert default nextval", "INSERT INTO t (id) VALUES (nextval('t_id_seq'))",
			Info{Class: Write, Statements: 1, Types: []string{"InsertStmt"}, Volatile: []string{"nextval"}}},
		{"data-modifying with", "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d",
			Info{Class: Write, Statements: 1, Types: []string{"SelectStmt"}}},
		{"select into", "SELECT * INTO t2 FROM t",
			Info{Class: DDL, Statements: 1, Types: []string{"SelectStmt"}}},
		{"update", "UPDATE t SET name = 'x' WHERE id = 1", Info{Class: Write, Statements: 1, Types: []string{"UpdateStmt"}}},
		{"merge", "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
			Info{Class: Write, Statements: 1, Types: []string{"MergeStmt"}}},
		{"create table", "CREATE TABLE t (id int PRIMARY KEY)", Info{Class: DDL, Statements: 1, Types: []string{"CreateStmt"}}},
		{"alter table", "ALTER TABLE t ADD COLUMN x int", Info{Class: DDL, Statements: 1, Types: []string{"AlterTableStmt"}}},
		{"create index", "CREATE INDEX CONCURRENTLY i ON t (x)", Info{Class: DDL, Statements: 1, Types: []string{"IndexStmt"}}},
		{"drop", "DROP TABLE t", Info{Class: DDL, Statements: 1, Types: []string{"DropStmt"}}},
		{"grant", "GRANT SELECT ON t TO app", Info{Class: DDL, Statements: 1, Types: []string{"GrantStmt"}}},
		{"begin", "BEGIN", Info{Class: TCL, Statements: 1, Types: []string{"TransactionStmt"}}},
		{"savepoint", "SAVEPOINT a", Info{Class: TCL, Statements: 1, Types: []string{"TransactionStmt"}}},
		{"set", "SET search_path = app", Info{Class: Other, Statements: 1, Types: []string{"VariableSetStmt"}}},
		{"show", "SHOW TimeZone", Info{Class: Read, Statements: 1, Types: []string{"VariableShowStmt"}}},
		{"vacuum", "VACUUM t", Info{Class: Other, Statements: 1, Types: []string{"VacuumStmt"}}},
		{"copy from stdin", "COPY t (id) FROM STDIN WITH (FORMAT csv)",
			Info{Class: Write, Statements: 1, Types: []string{"CopyStmt"}, CopyFromStdin: true}},
		{"copy from file", "COPY t FROM '/tmp/x.csv'", Info{Class: Write, Statements: 1, Types: []string{"CopyStmt"}}},
		{"copy to stdout", "COPY (SELECT 1) TO STDOUT", Info{Class: Read, Statements: 1, Types: []string{"CopyStmt"}}},
		{"explain", "EXPLAIN SELECT 1", Info{Class: Read, Statements: 1, Types: []string{"ExplainStmt"}}},
		{"explain analyze write", "EXPLAIN (ANALYZE) DELETE FROM t",
			Info{Class: Write, Statements: 1, Types: []string{"ExplainStmt"}}},
		{"explain analyze false", "EXPLAIN (ANALYZE false) DELETE FROM t",
			Info{Class: Read, Statements: 1, Types: []string{"ExplainStmt"}}},
		{"call", "CALL do_things(1)", Info{Class: Write, Statements: 1, Types: []string{"CallStmt"}}},
		{"several", "BEGIN; SELECT 1 ORDER BY 1; INSERT INTO t VALUES (1); COMMIT",
			Info{Class: Write, Statements: 4, Types: []string{"TransactionStmt", "SelectStmt", "InsertStmt", "TransactionStmt"}, HasOrderBy: true}},
		{"one of two selects unordered", "SELECT 1 ORDER BY 1; SELECT 2",
			Info{Class: Read, Statements: 2, Types: []string{"SelectStmt", "SelectStmt"}}},
		{"ddl wins", "CREATE TABLE a (x int); INSERT INTO a VALUES (1)",
			Info{Class: DDL, Statements: 2, Types: []string{"CreateStmt", "InsertStmt"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Analyze(tt.sql)
			if err != nil {
				t.Fatalf("Analyze(%q): %v", tt.sql, err)
			}
			if tt.want.Statements > 0 && len(got.Fingerprint) != 16 {
				t.Errorf("Fingerprint = %q, want 16 hex digits", got.Fingerprint)
			}
			got.Fingerprint = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Analyze(%q)\n got %+v\nwant %+v", tt.sql, got, tt.want)
			}
		})
	}
}

func TestAnalyzeParseError(t *testing.T) {
	info, err := Analyze("SELEC 1")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Analyze error = %v, want a *ParseError", err)
	}
	if info.Class != Unknown || info.ParseError == nil || info.Fingerprint != "" {
		t.Errorf("Analyze(bad) = %+v, want Class unknown and ParseError", info)
	}
	if !strings.Contains(pe.Message, "syntax error") || pe.Position != 1 {
		t.Errorf("ParseError = %+v, want a syntax error at 1", pe)
	}
	if got := pe.Error(); got != `parse sql: syntax error at or near "SELEC" (at character 1)` {
		t.Errorf("Error() = %q", got)
	}
}

func TestFingerprintIgnoresConstantsAndLayout(t *testing.T) {
	a, err := Fingerprint("SELECT * FROM t WHERE id = 1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Fingerprint("select *\n  from t -- comment\n where id = 42")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Fingerprint("SELECT * FROM t WHERE name = 'x'")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("fingerprints differ for the same statement: %s vs %s", a, b)
	}
	if a == c {
		t.Errorf("fingerprints equal for different statements: %s", a)
	}
	info, _ := Analyze("SELECT * FROM t WHERE id = 7")
	if info.Fingerprint != a {
		t.Errorf("Analyze fingerprint %s != Fingerprint %s", info.Fingerprint, a)
	}
}

func TestCopyFromStdin(t *testing.T) {
	for sql, want := range map[string]bool{
		`copy "t" ( "id", "name" ) from stdin binary;`: true,
		"BEGIN; COPY t FROM STDIN; COMMIT":             true,
		"COPY t FROM '/tmp/f'":                         false,
		"COPY t FROM PROGRAM 'cat'":                    false,
		"COPY t TO STDOUT":                             false,
		"SELECT 'copy from stdin'":                     false,
		"COPY t FROM STDIN garbage (":                  false,
	} {
		if got := CopyFromStdin(sql); got != want {
			t.Errorf("CopyFromStdin(%q) = %v, want %v", sql, got, want)
		}
		if info, err := Analyze(sql); err == nil && info.CopyFromStdin != want {
			t.Errorf("Analyze(%q).CopyFromStdin = %v, want %v", sql, info.CopyFromStdin, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	got, err := Normalize("SELECT * FROM t WHERE id = 1 AND name = 'it''s'")
	if err != nil {
		t.Fatal(err)
	}
	if want := "SELECT * FROM t WHERE id = $1 AND name = $2"; got != want {
		t.Errorf("Normalize = %q, want %q", got, want)
	}
	if _, err := Normalize("SELEC"); err == nil {
		t.Error("Normalize(bad) returned no error")
	}
}

func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{
		"SELECT 1", "SELECT now() FROM t LIMIT 1", "BEGIN; COMMIT", "COPY t FROM STDIN",
		"WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x ORDER BY 1",
		"EXPLAIN (ANALYZE) UPDATE t SET a = random()", "SELEC", "'", "$1", "SELECT 'now'::date",
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		info, err := Analyze(sql)
		if err != nil {
			if info.ParseError == nil || info.Class != Unknown {
				t.Fatalf("error %v without ParseError/Unknown: %+v", err, info)
			}
			return
		}
		if info.Statements != len(info.Types) {
			t.Fatalf("Statements %d but %d types", info.Statements, len(info.Types))
		}
		if info.Statements > 0 && info.Fingerprint == "" {
			t.Fatalf("no fingerprint for %q", sql)
		}
		if _, ok := classRank[info.Class]; !ok {
			t.Fatalf("unknown class %q", info.Class)
		}
	})
}
