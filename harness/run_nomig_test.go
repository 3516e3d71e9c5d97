package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/compare"
)

// TestRunNoMigrations: a release with no schema change (an empty
// migrations directory) replays the workload on a candidate identical to
// the baseline, and the comparison reports zero differences: no
// regression, no different rows or new errors, and the noise the control
// replay explains (now() in the login UPDATE, LIMIT without ORDER BY) is
// not counted.
func TestRunNoMigrations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL clusters")
	}
	f := setupRunFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The fixture's dbtwin.yaml, with an empty migrations directory: zero
	// pending migrations (LoadConfig must accept it).
	path := filepath.Join(t.TempDir(), "dbtwin.yaml")
	y := fmt.Sprintf("version: 1\ntenants:\n  - name: acme\n    source: %q\nmigrations:\n  dir: %s\nworkload:\n  file: %s\n"+
		"compare:\n  latency:\n    floor: 50ms\nreport:\n  formats: [json, markdown, junit, html]\n",
		f.prod.DSN("tenant_acme"), t.TempDir(), f.workload)
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("load config with an empty migrations directory: %v\n%s", err, y)
	}
	opts := runOpts(t)
	rep, err := Run(ctx, cfg, opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	checkNoSandbox(t, opts.StateDir)
	if rep.Verdict.Regressions || rep.Verdict.ExitCode != 0 || rep.Verdict.Headline != "no regressions" {
		t.Errorf("no migrations, yet: %+v", rep.Verdict)
	}
	if len(rep.Tenants) != 1 {
		t.Fatalf("want 1 tenant in the report, got %d", len(rep.Tenants))
	}
	acme := rep.Tenants[0]
	s := acme.Summary
	if s.Statements < 100 {
		t.Errorf("%d statements compared, want the captured workload", s.Statements)
	}
	if s.RegressedFingerprints+s.RegressedStatements+s.TablesDiffering+s.MigrationsFailed+s.LintFailing+s.LintErrors+s.LintWarnings != 0 {
		t.Errorf("differences reported: %+v", s)
	}
	for _, fd := range acme.Findings {
		for _, c := range fd.Classes {
			switch c.Class {
			case compare.NewError, compare.DifferentRows, compare.DifferentRowCount, compare.DifferentColumns,
				compare.ChangedError, compare.MissingInBaseline, compare.MissingInCandidate:
				t.Errorf("%s: %d statements %s: %s", fd.Fingerprint, c.Count, c.Class, fd.Example.SQL)
			}
		}
		if fd.Regression {
			t.Errorf("regression %s: %s", fd.Class, fd.Example.SQL)
		}
	}
	for _, d := range acme.FinalState {
		if !d.AlsoInControl {
			t.Errorf("table %s differs after replay and not in the control", d.Table)
		}
	}
	if acme.Migration != nil && len(acme.Migration.Migrations) != 0 {
		t.Errorf("migrations applied from an empty directory: %+v", acme.Migration.Migrations)
	}
}
