package compare

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/migrate"
	"github.com/dbtwin/dbtwin/replay"
)

func TestReportVerdictInputs(t *testing.T) {
	same := func() *Report {
		return run(t, DefaultConfig(), []*replay.Result{mk(1, "SELECT 1", rows("1", "a"))}, []*replay.Result{mk(1, "SELECT 1", rows("1", "a"))}, nil)
	}
	tests := []struct {
		name        string
		edit        func(t *testing.T, r *Report)
		wantExit    int
		wantReasons []string
	}{
		{name: "nothing", edit: func(*testing.T, *Report) {}, wantExit: 0},
		{name: "table differs", edit: func(t *testing.T, r *Report) {
			must(t, r.SetFinalState([]TableStateDiff{{Table: "users", RowsBaseline: 10, RowsCandidate: 9, ChunksDiffering: 1, SampleKeys: []string{"42"}}}))
		}, wantExit: 1, wantReasons: []string{"final state: 1 table differs after replay"}},
		{name: "table differs in control too: noise", edit: func(t *testing.T, r *Report) {
			must(t, r.SetFinalState([]TableStateDiff{{Table: "sessions", AlsoInControl: true}}))
		}, wantExit: 0},
		{name: "failed migration", edit: func(t *testing.T, r *Report) {
			must(t, r.SetMigration(&migrate.Report{Migrations: []migrate.MigrationResult{{Version: "3", Name: "rename", Error: "boom"}}}, nil))
		}, wantExit: 1, wantReasons: []string{"migration failed: 3 rename"}},
		{name: "lint error fails by default", edit: func(t *testing.T, r *Report) {
			must(t, r.SetMigration(nil, migrate.Findings{{Rule: "DT001", Severity: migrate.SeverityError}, {Rule: "DT013", Severity: migrate.SeverityWarning}}))
		}, wantExit: 1, wantReasons: []string{"migration lint: 1 finding at or above error"}},
		{name: "lint warning passes by default", edit: func(t *testing.T, r *Report) {
			must(t, r.SetMigration(nil, migrate.Findings{{Rule: "DT013", Severity: migrate.SeverityWarning}}))
		}, wantExit: 0},
		{name: "lint policy never", edit: func(t *testing.T, r *Report) {
			r.Tenants[0].Policy.FailOnLint = "never"
			must(t, r.SetMigration(nil, migrate.Findings{{Rule: "DT001", Severity: migrate.SeverityError}}))
		}, wantExit: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := same()
			tt.edit(t, r)
			if r.Verdict.ExitCode != tt.wantExit || r.Tenants[0].Verdict.ExitCode != tt.wantExit {
				t.Errorf("exit = %d (tenant %d), want %d", r.Verdict.ExitCode, r.Tenants[0].Verdict.ExitCode, tt.wantExit)
			}
			if !reflect.DeepEqual(r.Tenants[0].Verdict.Reasons, tt.wantReasons) {
				t.Errorf("reasons = %q, want %q", r.Tenants[0].Verdict.Reasons, tt.wantReasons)
			}
		})
	}
}

func TestReportPlansAndJSON(t *testing.T) {
	cfg := DefaultConfig()
	var base, cand []*replay.Result
	for i := int64(1); i <= 5; i++ {
		base = append(base, mk(i, "SELECT v FROM t WHERE id = 7", rows("1", "a"), withDur(10*time.Millisecond)))
		cand = append(cand, mk(i, "SELECT v FROM t WHERE id = 7", rows("1", "a"), withDur(50*time.Millisecond)))
	}
	r := run(t, cfg, base, cand, nil)
	need := r.NeedsExplain()
	if len(need) != 1 || need[0].ExplainSQL != "SELECT v FROM t WHERE id = 7" {
		t.Fatalf("needs explain = %+v", need)
	}
	must(t, r.AttachPlans(need[0].Fingerprint, Plans{Baseline: "Index Scan", Candidate: "Seq Scan"}))
	if err := r.AttachPlans("nope", Plans{}); err == nil {
		t.Error("attach plans to an unknown fingerprint: no error")
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if !strings.HasPrefix(s, `{"dbtwin_report":1,`) || strings.Contains(s, "id = 7") || !strings.Contains(s, "Seq Scan") {
		t.Errorf("JSON = %s", s)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Validate(); err != nil {
		t.Fatal(err)
	}
	back.Recompute()
	if !reflect.DeepEqual(back.Verdict, r.Verdict) || !back.Verdict.Regressions {
		t.Errorf("verdict after JSON round trip = %+v, want %+v", back.Verdict, r.Verdict)
	}
	back.Version = SchemaVersion + 1
	if err := back.Validate(); err == nil || !strings.Contains(err.Error(), "upgrade dbtwin") {
		t.Errorf("newer schema: err = %v", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
