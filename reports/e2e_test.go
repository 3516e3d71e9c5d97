package reports

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/migrate"
	"github.com/dbtwin/dbtwin/replay"
)

// resultsFile writes results with the real replay writer.
func resultsFile(t *testing.T, rs []*replay.Result) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	w, err := replay.NewResultsWriter(&buf, replay.ResultsHeader{Mode: replay.ModeOrdered, SampleRows: 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := w.WriteResult(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func result(seq int64, sql string, vals []string, d time.Duration) *replay.Result {
	h := replay.NewRowHasher()
	r := &replay.Result{Session: fmt.Sprintf("s%d", seq%3), Seq: seq, SQL: sql, Status: replay.StatusOK, Duration: d,
		Columns: []replay.Column{{Name: "v", TypeOID: 1700}}}
	for _, v := range vals {
		s := v
		h.Add(0, [][]byte{[]byte(v)})
		r.Sample = append(r.Sample, []*string{&s})
	}
	r.Rows, r.Tag = int64(len(vals)), fmt.Sprintf("SELECT %d", len(vals))
	r.OrderedHash, r.MultisetHash = h.Ordered(), h.Multiset()
	return r
}

// TestCompareThenRender runs Compare on the demo's shape of workload (a
// safe change, a renamed column, a numeric scale change, a dropped index,
// plus noise) and renders every format from its report.
func TestCompareThenRender(t *testing.T) {
	var base, cand, ctrl []*replay.Result
	seq := int64(0)
	add := func(b, c, k *replay.Result) {
		base, cand, ctrl = append(base, b), append(cand, c), append(ctrl, k)
	}
	for i := 0; i < 20; i++ {
		seq++
		q := fmt.Sprintf("SELECT total FROM orders WHERE customer_id = %d", i)
		add(result(seq, q, []string{"10"}, time.Millisecond), result(seq, q, []string{"10"}, 40*time.Millisecond), result(seq, q, []string{"10"}, time.Millisecond))
		seq++
		q = fmt.Sprintf("SELECT name FROM users WHERE id = %d", i)
		bad := result(seq, q, nil, time.Millisecond)
		bad.Status, bad.SQLState, bad.Message, bad.Columns, bad.Tag = replay.StatusError, "42703", `column "name" does not exist`, nil, ""
		add(result(seq, q, []string{"ann"}, time.Millisecond), bad, result(seq, q, []string{"ann"}, time.Millisecond))
		seq++
		q = fmt.Sprintf("SELECT amount FROM invoices WHERE id = %d", i)
		add(result(seq, q, []string{"12.35"}, time.Millisecond), result(seq, q, []string{"12"}, time.Millisecond), result(seq, q, []string{"12.35"}, time.Millisecond))
		seq++
		q = "SELECT id FROM jobs FOR UPDATE SKIP LOCKED LIMIT 1"
		add(result(seq, q, []string{"1"}, time.Millisecond), result(seq, q, []string{"2"}, time.Millisecond), result(seq, q, []string{"3"}, time.Millisecond))
		seq++
		q = fmt.Sprintf("SELECT nickname FROM users WHERE id = %d", i) // the safe expand step: same everywhere
		add(result(seq, q, []string{"x"}, time.Millisecond), result(seq, q, []string{"x"}, time.Millisecond), result(seq, q, []string{"x"}, time.Millisecond))
	}
	rep, err := compare.Compare(context.Background(), resultsFile(t, base), resultsFile(t, cand), resultsFile(t, ctrl), compare.DefaultConfig(),
		compare.WithTenant("demo"), compare.WithDbtwinVersion("test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.SetMigration(&migrate.Report{Format: "command", Source: "sqitch deploy db:pg://u:pw@h/db", Migrations: []migrate.MigrationResult{{Version: "1", Name: "x", Duration: time.Second,
		Statements: []migrate.StatementResult{{SQL: "ALTER TABLE users RENAME COLUMN name TO full_name", Duration: time.Second, Locks: []migrate.LockHeld{{Relation: "users", Mode: migrate.LockAccessExclusive, Held: time.Second}}}}}}},
		migrate.Findings{{Rule: "DT010", Severity: migrate.SeverityError, File: "1.sql", Line: 1, Queries: []migrate.QueryRef{{SQL: "SELECT name FROM users WHERE email = 'bob@example.com'"}}}}); err != nil {
		t.Fatal(err)
	}
	for _, l := range rep.NeedsExplain() {
		if err := rep.AttachPlans(l.Fingerprint, compare.Plans{Baseline: "Index Scan using orders_customer_idx", Candidate: "Seq Scan on orders"}); err != nil {
			t.Fatal(err)
		}
	}
	tr := rep.Tenants[0]
	regressed := map[compare.Class]int{}
	for _, f := range tr.Findings {
		if f.Regression {
			regressed[f.Class]++
		}
	}
	if len(regressed) != 3 || regressed[compare.NewError] != 1 || regressed[compare.DifferentRows] != 1 || regressed[compare.Slower] != 1 {
		t.Errorf("regressed fingerprints = %v, want one new error, one different rows, one slower", regressed)
	}
	if rep.Verdict.ExitCode != 1 || tr.Summary.RegressedFingerprints != 3 || tr.Summary.LintFailing != 1 {
		t.Errorf("verdict %+v, summary %+v", rep.Verdict, tr.Summary)
	}
	for _, name := range Names() {
		r, _ := New(name)
		var buf bytes.Buffer
		if err := r.Render(&buf, rep); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out := buf.String()
		for _, leak := range []string{"bob@example.com", "customer_id = 7", ":pw@"} {
			if strings.Contains(out, leak) {
				t.Errorf("%s output contains %q", name, leak)
			}
		}
		if name == "html" && (strings.Count(out, "<svg") != 2 || !strings.Contains(out, "dbtwin: 4 regressions") || !strings.Contains(out, "Seq Scan on orders")) {
			t.Errorf("html lacks the plots, the headline or the plan diff")
		}
	}
}
