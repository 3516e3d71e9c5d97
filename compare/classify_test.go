package compare

import (
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/replay"
	"github.com/dbtwin/dbtwin/sqlinfo"
)

func TestClassify(t *testing.T) {
	const sel = "SELECT id, v FROM t WHERE id > 0"
	const ordered = "SELECT id, v FROM t ORDER BY id"
	const volatile = "SELECT id, now() FROM t"
	const limited = "SELECT id, v FROM t LIMIT 2"
	const floats = "SELECT id, avg(x) FROM t GROUP BY id"
	abc := rows("1", "a", "2", "b", "3", "c")
	fcols := withCols(replay.Column{Name: "id", TypeOID: 23}, replay.Column{Name: "avg", TypeOID: 701})
	fp, err := sqlinfo.Fingerprint(sel)
	if err != nil {
		t.Fatal(err)
	}
	tol := func(x float64) func(*Config) { return func(c *Config) { c.FloatTolerance = x } }
	rule := func(r Rule) func(*Config) { return func(c *Config) { c.Rules = append(c.Rules, r) } }

	tests := []struct {
		name           string
		cfg            func(*Config)
		base, cand     *replay.Result
		ctrl           *replay.Result
		want           Class
		wantUnderlying Class
		wantDiff       string // substring of the rendered diff
	}{
		{name: "same", base: mk(1, sel, abc), cand: mk(1, sel, abc), want: Same},
		{name: "different rows", base: mk(1, sel, abc), cand: mk(1, sel, rows("1", "a", "2", "B", "3", "c")), want: DifferentRows, wantDiff: "+2 | B"},
		{name: "order differs without ORDER BY: multiset, same", base: mk(1, sel, abc), cand: mk(1, sel, rows("3", "c", "1", "a", "2", "b")), want: Same},
		{name: "order differs with ORDER BY: different rows", base: mk(1, ordered, abc), cand: mk(1, ordered, rows("3", "c", "1", "a", "2", "b")), want: DifferentRows},
		{name: "different row count", base: mk(1, sel, abc), cand: mk(1, sel, abc[:2]), want: DifferentRowCount, wantDiff: "-ok SELECT 3 (3 rows)"},
		{name: "different affected rows (tag)", base: mk(1, "UPDATE t SET v = 'x'", nil, withTag("UPDATE 3")), cand: mk(1, "UPDATE t SET v = 'x'", nil, withTag("UPDATE 2")), want: DifferentRowCount},
		{name: "different column type", base: mk(1, sel, abc), cand: mk(1, sel, abc, withCols(replay.Column{Name: "id", TypeOID: 1700}, replay.Column{Name: "v", TypeOID: 25})), want: DifferentColumns, wantDiff: "+id numeric"},
		{name: "new error", base: mk(1, sel, abc), cand: mk(1, sel, nil, withErr("42703", "column \"v\" does not exist")), want: NewError, wantDiff: "+error 42703"},
		{name: "new timeout", base: mk(1, sel, abc), cand: mk(1, sel, nil, withErr("57014", "canceling statement due to statement timeout"), withStatus(replay.StatusTimeout)), want: NewError},
		{name: "fixed error", base: mk(1, sel, nil, withErr("42P01", "relation does not exist")), cand: mk(1, sel, abc), want: FixedError},
		{name: "changed error", base: mk(1, sel, nil, withErr("42P01", "x")), cand: mk(1, sel, nil, withErr("42703", "y")), want: ChangedError},
		{name: "same error", base: mk(1, sel, nil, withErr("23505", "dup a")), cand: mk(1, sel, nil, withErr("23505", "dup b")), want: Same},
		{name: "skipped", base: mk(1, "COPY t FROM STDIN", nil, withStatus(replay.StatusSkipped)), cand: mk(1, "COPY t FROM STDIN", nil, withStatus(replay.StatusSkipped)), want: Skipped},
		{name: "noise: control differs the same way", base: mk(1, sel, abc), cand: mk(1, sel, rows("1", "x", "2", "b", "3", "c")), ctrl: mk(1, sel, rows("1", "y", "2", "b", "3", "c")), want: Noise, wantUnderlying: DifferentRows},
		{name: "noise: control's row count differs, explains different rows", base: mk(1, sel, abc), cand: mk(1, sel, rows("1", "x", "2", "b", "3", "c")), ctrl: mk(1, sel, abc[:1]), want: Noise, wantUnderlying: DifferentRows},
		{name: "not noise: control same", base: mk(1, sel, abc), cand: mk(1, sel, rows("1", "x", "2", "b", "3", "c")), ctrl: mk(1, sel, abc), want: DifferentRows},
		{name: "not noise: control's rows differ, candidate errors", base: mk(1, sel, abc), cand: mk(1, sel, nil, withErr("42703", "x")), ctrl: mk(1, sel, abc[:1]), want: NewError},
		{name: "noise: same error on control (deadlock)", base: mk(1, sel, abc), cand: mk(1, sel, nil, withErr("40P01", "deadlock")), ctrl: mk(1, sel, nil, withErr("40P01", "deadlock")), want: Noise, wantUnderlying: NewError},
		{name: "not noise: different error on control", base: mk(1, sel, abc), cand: mk(1, sel, nil, withErr("42703", "x")), ctrl: mk(1, sel, nil, withErr("40P01", "deadlock")), want: NewError},
		{name: "volatile: expected noise", base: mk(1, volatile, abc), cand: mk(1, volatile, rows("1", "x", "2", "b", "3", "c")), want: ExpectedNoise, wantUnderlying: DifferentRows},
		{name: "LIMIT without ORDER BY: expected noise", base: mk(1, limited, abc[:2]), cand: mk(1, limited, abc[1:]), want: ExpectedNoise, wantUnderlying: DifferentRows},
		{name: "volatile but new error: regression", base: mk(1, volatile, abc), cand: mk(1, volatile, nil, withErr("42703", "x")), want: NewError},
		{name: "volatile but different columns: regression", base: mk(1, volatile, abc), cand: mk(1, volatile, abc, withCols(replay.Column{Name: "id", TypeOID: 20}, replay.Column{Name: "v", TypeOID: 25})), want: DifferentColumns},
		{name: "float within tolerance", cfg: tol(1e-6), base: mk(1, floats, rows("1", "0.30000000000000004"), fcols), cand: mk(1, floats, rows("1", "0.3"), fcols), want: Same},
		{name: "float within relative tolerance, unordered", cfg: tol(1e-6), base: mk(1, floats, rows("1", "1000000.5", "2", "7"), fcols), cand: mk(1, floats, rows("2", "7", "1", "1000000.0"), fcols), want: Same},
		{name: "float beyond tolerance", cfg: tol(1e-9), base: mk(1, floats, rows("1", "0.31"), fcols), cand: mk(1, floats, rows("1", "0.3"), fcols), want: DifferentRows},
		{name: "float without tolerance", base: mk(1, floats, rows("1", "0.30000000000000004"), fcols), cand: mk(1, floats, rows("1", "0.3"), fcols), want: DifferentRows},
		{name: "tolerance does not apply to text", cfg: tol(0.5), base: mk(1, sel, rows("1", "0.3")), cand: mk(1, sel, rows("1", "0.31")), want: DifferentRows},
		{name: "tolerance, result beyond sample: inconclusive", cfg: tol(1e-6), base: mk(1, floats, rows("1", "0.1", "2", "0.2"), fcols, withSampleLimit(1)), cand: mk(1, floats, rows("1", "0.1", "2", "0.2000001"), fcols, withSampleLimit(1)), want: Inconclusive, wantUnderlying: DifferentRows},
		{name: "per-statement tolerance rule", cfg: rule(Rule{SQL: `(?i)avg\(`, FloatTolerance: 1e-6}), base: mk(1, floats, rows("1", "0.30000000000000004"), fcols), cand: mk(1, floats, rows("1", "0.3"), fcols), want: Same},
		{name: "ignored column", cfg: rule(Rule{IgnoreColumns: []string{"v"}}), base: mk(1, sel, abc), cand: mk(1, sel, rows("1", "x", "2", "y", "3", "z")), want: Same},
		{name: "ignored column of another statement", cfg: rule(Rule{SQL: "other_table", IgnoreColumns: []string{"v"}}), base: mk(1, sel, abc), cand: mk(1, sel, rows("1", "x", "2", "y", "3", "z")), want: DifferentRows},
		{name: "ignored column, other column differs", cfg: rule(Rule{IgnoreColumns: []string{"v"}}), base: mk(1, sel, abc), cand: mk(1, sel, rows("1", "a", "2", "b", "4", "c")), want: DifferentRows, wantDiff: "+4"},
		{name: "ignored statement by regexp", cfg: rule(Rule{SQL: `FROM t\b`, Ignore: true, Reason: "audit"}), base: mk(1, sel, abc), cand: mk(1, sel, nil, withErr("42703", "x")), want: Ignored, wantUnderlying: NewError},
		{name: "ignored statement by fingerprint", cfg: rule(Rule{Fingerprint: fp, Ignore: true}), base: mk(1, sel, abc), cand: mk(1, sel, abc[:1]), want: Ignored, wantUnderlying: DifferentRowCount},
		{name: "ignore rule, no difference: same", cfg: rule(Rule{Fingerprint: fp, Ignore: true}), base: mk(1, sel, abc), cand: mk(1, sel, abc), want: Same},
		{name: "missing in candidate", base: mk(1, sel, abc), want: MissingInCandidate},
		{name: "missing in baseline", cand: mk(1, sel, abc), want: MissingInBaseline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			var ctrl []*replay.Result
			if tt.ctrl != nil {
				ctrl = []*replay.Result{tt.ctrl}
			}
			rep := run(t, cfg, []*replay.Result{tt.base}, []*replay.Result{tt.cand}, ctrl)
			tr := rep.Tenants[0]
			if len(tr.Findings) != 1 {
				t.Fatalf("findings = %d, want 1", len(tr.Findings))
			}
			f := tr.Findings[0]
			ex := f.Example
			if ex.Class != tt.want || ex.Underlying != tt.wantUnderlying {
				t.Fatalf("class = %s (underlying %q, reason %q), want %s (underlying %q)", ex.Class, ex.Underlying, ex.Reason, tt.want, tt.wantUnderlying)
			}
			if f.Regression != tt.want.IsRegression() || rep.Verdict.Regressions != tt.want.IsRegression() {
				t.Errorf("regression = %v, verdict %v; want %v", f.Regression, rep.Verdict.Regressions, tt.want.IsRegression())
			}
			wantExit := 0
			if tt.want.IsRegression() {
				wantExit = 1
			}
			if rep.Verdict.ExitCode != wantExit {
				t.Errorf("exit code = %d, want %d", rep.Verdict.ExitCode, wantExit)
			}
			if tt.wantDiff != "" {
				if ex.Diff == nil {
					t.Fatalf("no diff, want one containing %q", tt.wantDiff)
				}
				var b strings.Builder
				for _, l := range ex.Diff.Lines {
					b.WriteString(string(l.Op) + l.Text + "\n")
				}
				if !strings.Contains(b.String(), tt.wantDiff) {
					t.Errorf("diff:\n%s\nwant it to contain %q", b.String(), tt.wantDiff)
				}
			}
		})
	}
}

func TestExampleIsNormalizedAndWorst(t *testing.T) {
	base := []*replay.Result{
		mk(1, "SELECT id, v FROM t WHERE email = 'alice@example.com' /* user=alice */", rows("1", "a")),
		mk(2, "SELECT id, v FROM t WHERE email = 'bob@example.com'", rows("1", "a")),
		mk(3, "SELECT id, v FROM t WHERE email = 'carol@example.com'", rows("1", "a")),
	}
	cand := []*replay.Result{
		mk(1, base[0].SQL, rows("1", "a")),
		mk(3, base[2].SQL, nil, withErr("42703", "x")),
		mk(2, base[1].SQL, nil, withErr("42703", "x")),
	}
	rep := run(t, DefaultConfig(), base, cand, nil)
	f := rep.Tenants[0].Findings[0]
	if f.Count != 3 || f.Class != NewError || f.Example.Seq != 2 {
		t.Fatalf("finding = count %d class %s example seq %d; want 3, new_error, 2", f.Count, f.Class, f.Example.Seq)
	}
	if strings.Contains(f.Example.SQL, "example.com") || !strings.Contains(f.Example.SQL, "$1") {
		t.Errorf("example SQL %q is not normalized", f.Example.SQL)
	}
	if got := displaySQL(base[0].SQL, 200); strings.Contains(got, "alice") {
		t.Errorf("displaySQL kept a comment: %q", got)
	}
	want := []StatementCount{{NewError, 2}, {Same, 1}}
	if len(f.Classes) != 2 || f.Classes[0] != want[0] || f.Classes[1] != want[1] {
		t.Errorf("classes = %v, want %v", f.Classes, want)
	}
}

func TestScrubLiterals(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SELECT * FROM users WHERE email = 'a@b.com' AND id = 42", "SELECT * FROM users WHERE email = ? AND id = ?"},
		{"SELECT 'it''s', E'x\\'y' FROM t2", "SELECT ?, E? FROM t2"},
		{`SELECT "col 1", v1 FROM "t'x" WHERE a = $1`, `SELECT "col 1", v1 FROM "t'x" WHERE a = $1`},
		{"INSERT INTO t VALUES ('cut off at 80 chars", "INSERT INTO t VALUES (?"},
		{"SELECT $$secret$$, $tag$x$tag$, 1.5e3", "SELECT ?, ?, ?"},
	}
	for _, tt := range tests {
		if got := ScrubLiterals(tt.in); got != tt.want {
			t.Errorf("ScrubLiterals(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
