package compare

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/migrate"
)

// SchemaVersion is the version of the report's JSON schema, written as
// "dbtwin_report". Readers refuse a newer version.
const SchemaVersion = 1

// Report is the outcome of a verification run: one TenantReport per
// tenant compared (Compare makes one; reports.Merge joins shards), an
// overall summary and the verdict CI gates on. It is plain data that
// round-trips through JSON; every renderer in package reports works from
// it alone.
//
// A report carries only what compare read from results files (replayed on
// masked clones) plus what the harness attaches (migration report, final
// state, plans): no connection string, no password. Example statements are
// normalized (constants replaced by $n), because the captured SQL text
// comes from production and may hold unmasked literals.
type Report struct {
	// Version is SchemaVersion.
	Version int `json:"dbtwin_report"`
	// Meta describes the run.
	Meta Meta `json:"meta"`
	// Verdict is the overall verdict: a regression in any tenant fails.
	Verdict Verdict `json:"verdict"`
	// Summary adds up the tenants' summaries.
	Summary Summary `json:"summary"`
	// Tenants are the tenants compared, sorted by name.
	Tenants []TenantReport `json:"tenants"`
}

// Meta describes the run as a whole. Nothing in it is a wall-clock time,
// so golden files stay stable.
type Meta struct {
	// DbtwinVersion is the dbtwin version that made the report.
	DbtwinVersion string `json:"dbtwin_version,omitempty"`
	// Notes are remarks about the report itself (e.g. shards merged from
	// different dbtwin versions).
	Notes []string `json:"notes,omitempty"`
}

// TenantReport is the comparison of one tenant's baseline and candidate.
type TenantReport struct {
	// Tenant names the tenant ("" when the run has a single unnamed one).
	Tenant string `json:"tenant"`
	// Verdict is this tenant's verdict.
	Verdict Verdict `json:"verdict"`
	// Summary counts what was found.
	Summary Summary `json:"summary"`
	// Policy is the thresholds the verdict was reached with.
	Policy Policy `json:"policy"`
	// Inputs describe the results files read.
	Inputs Inputs `json:"inputs"`
	// Env is what the harness knows about the run of this tenant.
	Env Env `json:"env"`
	// Findings has one entry per statement fingerprint, worst first.
	Findings []Finding `json:"findings"`
	// Latency has one row per fingerprint measured on both sides, worst
	// first.
	Latency []LatencyRow `json:"latency"`
	// FinalState lists the tables whose contents differ after replay,
	// sorted by name (set by the harness with Report.SetFinalState).
	FinalState []TableStateDiff `json:"final_state,omitempty"`
	// Migration is what applying the migrations to the candidate did (set
	// by the harness with Report.SetMigration).
	Migration *migrate.Report `json:"migration,omitempty"`
	// Lint are the zero-downtime lint findings of those migrations.
	Lint migrate.Findings `json:"lint,omitempty"`
}

// Policy records the thresholds of the Config a tenant was compared with,
// so that a report explains itself and Recompute can redo its verdict.
type Policy struct {
	// LatencyRatio, LatencyFloor, LatencyGate and WarmUp are
	// Config.Latency's Ratio, Floor, Gate and WarmUp.
	LatencyRatio float64       `json:"latency_ratio"`
	LatencyFloor time.Duration `json:"latency_floor"`
	LatencyGate  string        `json:"latency_gate"`
	WarmUp       int           `json:"warm_up"`
	// FloatTolerance is Config.FloatTolerance.
	FloatTolerance float64 `json:"float_tolerance,omitempty"`
	// FailInconclusive is Config.FailInconclusive.
	FailInconclusive bool `json:"fail_inconclusive,omitempty"`
	// FailOnLint is Config.FailOnLint ("error" when unset).
	FailOnLint string `json:"fail_on_lint"`
}

// Inputs describe the results files of one tenant.
type Inputs struct {
	// Baseline, Candidate and Control (nil without one) describe each
	// results file.
	Baseline  SideInput  `json:"baseline"`
	Candidate SideInput  `json:"candidate"`
	Control   *SideInput `json:"control,omitempty"`
	// Pairs is how many statements were compared (including missing ones).
	Pairs int `json:"pairs"`
}

// SideInput describes one results file.
type SideInput struct {
	// Results is how many results the file held.
	Results int `json:"results"`
	// Mode and SampleRows are from its header.
	Mode       string `json:"mode,omitempty"`
	SampleRows int    `json:"sample_rows,omitempty"`
	// Errors counts results that were not ok (error, timeout, conn_lost).
	Errors int `json:"errors"`
	// StatementTime is the sum of the results' durations.
	StatementTime time.Duration `json:"statement_time"`
}

// Env is what the harness records about a tenant's run. Durations are
// measured by the harness and passed in; compare never reads a clock.
type Env struct {
	// PostgreSQL versions of the sandboxes.
	PostgresBaseline  string `json:"postgres_baseline,omitempty"`
	PostgresCandidate string `json:"postgres_candidate,omitempty"`
	// Phases are the pipeline stages with their durations, in order.
	Phases []Phase `json:"phases,omitempty"`
}

// Phase is one pipeline stage's duration.
type Phase struct {
	// Name is the stage ("clone", "migrate", "replay" …); Duration how
	// long it took.
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
}

// Verdict is what a CI job gates on.
type Verdict struct {
	// Regressions reports whether anything fails the run.
	Regressions bool `json:"regressions"`
	// ExitCode is 1 with regressions, else 0.
	ExitCode int `json:"exit_code"`
	// Headline is one line for a title ("3 regressions" / "no regressions").
	Headline string `json:"headline"`
	// Reasons list what failed, one line each.
	Reasons []string `json:"reasons,omitempty"`
}

// Summary counts what a comparison found.
type Summary struct {
	// Statements is how many statements were compared.
	Statements int `json:"statements"`
	// Fingerprints is how many distinct statement fingerprints.
	Fingerprints int `json:"fingerprints"`
	// Classes counts statements and fingerprints per class, most serious
	// first, classes with no count left out. A statement's class is about
	// its result; a fingerprint's is its worst statement's, or Slower /
	// Faster from latency.
	Classes []ClassCount `json:"classes,omitempty"`
	// RegressedFingerprints is how many fingerprints fail the run.
	RegressedFingerprints int `json:"regressed_fingerprints"`
	// RegressedStatements is how many statements have a failing class.
	RegressedStatements int `json:"regressed_statements"`
	// TablesDiffering counts final-state differences that are not noise.
	TablesDiffering int `json:"tables_differing"`
	// MigrationsFailed counts migrations that ended with an error.
	MigrationsFailed int `json:"migrations_failed"`
	// LintFailing counts lint findings at or above Policy.FailOnLint.
	LintFailing int `json:"lint_failing"`
	// LintErrors and LintWarnings count lint findings by severity.
	LintErrors   int `json:"lint_errors"`
	LintWarnings int `json:"lint_warnings"`
}

// ClassCount is how many statements and fingerprints have one class.
type ClassCount struct {
	// Class is the class counted.
	Class Class `json:"class"`
	// Statements and Fingerprints are how many have it.
	Statements   int `json:"statements"`
	Fingerprints int `json:"fingerprints"`
}

// Finding is what compare found for one statement fingerprint.
type Finding struct {
	// Fingerprint identifies the statement shape.
	Fingerprint string `json:"fingerprint"`
	// Class is the worst class among its statements and its latency.
	Class Class `json:"class"`
	// Regression reports whether the fingerprint fails the run.
	Regression bool `json:"regression"`
	// Count is how many of its statements were compared.
	Count int `json:"count"`
	// Classes counts its statements per class, most serious first.
	Classes []StatementCount `json:"classes"`
	// Example is the first statement (lowest Seq) of its worst statement
	// class.
	Example Example `json:"example"`
}

// StatementCount is how many statements of a fingerprint have a class.
type StatementCount struct {
	// Class is the class counted, Count how many statements have it.
	Class Class `json:"class"`
	Count int   `json:"count"`
}

// Example is one statement of a fingerprint, shown as evidence.
type Example struct {
	// Session and Seq locate the statement in the captured workload.
	Session string `json:"session"`
	Seq     int64  `json:"seq"`
	// SQL is the statement normalized (constants as $n) and cut to
	// Config.SQLChars.
	SQL string `json:"sql"`
	// Class is this statement's class.
	Class Class `json:"class"`
	// Underlying is the difference behind Noise, ExpectedNoise, Ignored
	// and Inconclusive.
	Underlying Class `json:"underlying,omitempty"`
	// Reason explains a noise or ignore decision.
	Reason string `json:"reason,omitempty"`
	// Baseline and Candidate say how the statement ended on each side.
	Baseline  Outcome `json:"baseline"`
	Candidate Outcome `json:"candidate"`
	// Diff is a bounded sample of the difference.
	Diff *Diff `json:"diff,omitempty"`
}

// Outcome is how a statement ended on one side.
type Outcome struct {
	// Status is ok, error, timeout, conn_lost, skipped or missing.
	Status string `json:"status"`
	// SQLState and Message are the error, if any (Message cut to 300
	// characters).
	SQLState string `json:"sqlstate,omitempty"`
	Message  string `json:"message,omitempty"`
	// Tag is the command tag; Rows the number of rows returned.
	Tag  string `json:"tag,omitempty"`
	Rows int64  `json:"rows"`
}

// Diff is a bounded, line-per-row difference (go-diff line mode).
type Diff struct {
	// Note qualifies the sample ("first 20 of 1500 rows on each side").
	Note string `json:"note,omitempty"`
	// Lines are the lines, at most Config.DiffLines.
	Lines []DiffLine `json:"lines"`
}

// DiffOp marks a diff line.
type DiffOp string

// The diff line kinds.
const (
	// DiffEqual: the line is on both sides.
	DiffEqual DiffOp = "="
	// DiffDelete: the line is only in the baseline.
	DiffDelete DiffOp = "-"
	// DiffInsert: the line is only in the candidate.
	DiffInsert DiffOp = "+"
	// DiffElided: lines left out (Text says how many).
	DiffElided DiffOp = "…"
)

// DiffLine is one line of a Diff.
type DiffLine struct {
	// Op says which side the line is on; Text is the line.
	Op   DiffOp `json:"op"`
	Text string `json:"text"`
}

// LatencyRow is one fingerprint's latency on each side, measured after
// warm-up on successful executions only.
type LatencyRow struct {
	// Fingerprint identifies the statement shape.
	Fingerprint string `json:"fingerprint"`
	// SQL is the fingerprint's example statement (normalized, cut).
	SQL string `json:"sql"`
	// Baseline, Candidate and Control (nil without a control replay) are
	// each side's measurements.
	Baseline  Quantiles  `json:"baseline"`
	Candidate Quantiles  `json:"candidate"`
	Control   *Quantiles `json:"control,omitempty"`
	// Ratio is candidate over baseline at the gate quantile.
	Ratio float64 `json:"ratio"`
	// Class is Slower, Faster, Noise (control slower as well) or Same;
	// Skipped when a side had fewer than MinSamples measurements.
	Class Class `json:"class"`
	// NeedsExplain marks a slower fingerprint whose plans the harness
	// should capture (EXPLAIN on both sides, then Report.AttachPlans).
	NeedsExplain bool `json:"needs_explain,omitempty"`
	// ExplainSQL is the full text of the example statement to EXPLAIN. It
	// is never serialized: the raw text may hold production literals.
	ExplainSQL string `json:"-"`
	// Plans are the plans the harness attached.
	Plans *Plans `json:"plans,omitempty"`
}

// Quantiles summarize one side's latency of a fingerprint.
type Quantiles struct {
	// N is the number of measured executions (after warm-up).
	N int `json:"n"`
	// P50 and P95 are nearest-rank quantiles (exact up to 64 executions,
	// within ~1% beyond); Max is exact.
	P50 time.Duration `json:"p50"`
	P95 time.Duration `json:"p95"`
	Max time.Duration `json:"max"`
}

// Plans are EXPLAIN outputs of a fingerprint on both sides, as text. The
// harness should EXPLAIN the normalized statement as a generic plan, or
// accept that plan text repeats the statement's constants.
type Plans struct {
	// Baseline and Candidate are the EXPLAIN text of each side.
	Baseline  string `json:"baseline"`
	Candidate string `json:"candidate"`
}

// TableStateDiff is a table whose contents differ between baseline and
// candidate after replay, as the harness found by comparing chunked
// checksums over the primary key.
type TableStateDiff struct {
	// Table is the table ("schema.name" outside public).
	Table string `json:"table"`
	// RowsBaseline and RowsCandidate are the row counts.
	RowsBaseline  int64 `json:"rows_baseline"`
	RowsCandidate int64 `json:"rows_candidate"`
	// ChunksDiffering is how many key-range chunks had different checksums.
	ChunksDiffering int `json:"chunks_differing"`
	// SampleKeys are a few primary keys (text, from the masked clone) of
	// rows that differ.
	SampleKeys []string `json:"sample_keys,omitempty"`
	// AlsoInControl says the table differs between baseline and control
	// as well: non-determinism (noise), not a regression.
	AlsoInControl bool `json:"also_in_control,omitempty"`
}

// SetFinalState records the final-state differences the harness found
// for a single-tenant report and recomputes the verdict.
func (r *Report) SetFinalState(diffs []TableStateDiff) error {
	t, err := r.single("set final state")
	if err != nil {
		return err
	}
	t.FinalState = append([]TableStateDiff(nil), diffs...)
	sort.Slice(t.FinalState, func(i, j int) bool { return t.FinalState[i].Table < t.FinalState[j].Table })
	r.Recompute()
	return nil
}

// SetMigration records the migration report and lint findings of a
// single-tenant report and recomputes the verdict. Either may be nil. The
// captured queries lint findings name have their constants scrubbed
// (ScrubLiterals): they are production text.
func (r *Report) SetMigration(rep *migrate.Report, lint migrate.Findings) error {
	t, err := r.single("set migration")
	if err != nil {
		return err
	}
	t.Migration = rep
	t.Lint = nil
	for _, f := range lint {
		// The queries a finding names are captured production text, cut
		// short: scrub their constants.
		qs := append([]migrate.QueryRef(nil), f.Queries...)
		for i := range qs {
			qs[i].SQL = ScrubLiterals(qs[i].SQL)
		}
		f.Queries = qs
		t.Lint = append(t.Lint, f)
	}
	r.Recompute()
	return nil
}

// SetEnv records what the harness knows about a single-tenant run.
func (r *Report) SetEnv(env Env) error {
	t, err := r.single("set env")
	if err != nil {
		return err
	}
	t.Env = env
	return nil
}

// AttachPlans attaches EXPLAIN output to a fingerprint's latency row of a
// single-tenant report.
func (r *Report) AttachPlans(fingerprint string, p Plans) error {
	t, err := r.single("attach plans")
	if err != nil {
		return err
	}
	for i := range t.Latency {
		if t.Latency[i].Fingerprint == fingerprint {
			t.Latency[i].Plans = &p
			return nil
		}
	}
	return fmt.Errorf("attach plans: no latency row for fingerprint %s", fingerprint)
}

// NeedsExplain returns the latency rows marked for EXPLAIN, across tenants.
func (r *Report) NeedsExplain() []LatencyRow {
	var out []LatencyRow
	for _, t := range r.Tenants {
		for _, l := range t.Latency {
			if l.NeedsExplain {
				out = append(out, l)
			}
		}
	}
	return out
}

func (r *Report) single(op string) (*TenantReport, error) {
	if len(r.Tenants) != 1 {
		return nil, fmt.Errorf("%s: report has %d tenants, want 1 (set it before merging)", op, len(r.Tenants))
	}
	return &r.Tenants[0], nil
}

// Validate checks that a report (e.g. read back from JSON) has a schema
// version this dbtwin understands.
func (r *Report) Validate() error {
	switch {
	case r.Version == 0:
		return errors.New("validate report: no dbtwin_report version (not a dbtwin report?)")
	case r.Version > SchemaVersion:
		return fmt.Errorf("validate report: schema version %d is newer than this dbtwin reads (%d); upgrade dbtwin", r.Version, SchemaVersion)
	}
	return nil
}

// Recompute redoes every tenant's summary and verdict, and the overall
// ones, from the findings, latency, final state, migration and lint the
// report holds. Call it after changing any of them by hand.
func (r *Report) Recompute() {
	r.Version = SchemaVersion
	sort.SliceStable(r.Tenants, func(i, j int) bool { return r.Tenants[i].Tenant < r.Tenants[j].Tenant })
	var all Summary
	var reasons []string
	regressions := 0
	for i := range r.Tenants {
		t := &r.Tenants[i]
		t.recompute()
		all = addSummary(all, t.Summary)
		regressions += countRegressions(t.Summary)
		for _, why := range t.Verdict.Reasons {
			if len(r.Tenants) > 1 || t.Tenant != "" {
				why = tenantLabel(t.Tenant) + ": " + why
			}
			reasons = append(reasons, why)
		}
	}
	r.Summary = all
	r.Verdict = verdict(regressions, reasons)
}

func tenantLabel(t string) string {
	if t == "" {
		return "(default tenant)"
	}
	return t
}

// recompute redoes the tenant's summary and verdict.
func (t *TenantReport) recompute() {
	s := Summary{Fingerprints: len(t.Findings)}
	stmts := map[Class]int{}
	fps := map[Class]int{}
	for _, f := range t.Findings {
		fps[f.Class]++
		if f.Regression {
			s.RegressedFingerprints++
		}
		for _, c := range f.Classes {
			stmts[c.Class] += c.Count
			s.Statements += c.Count
			if c.Class.IsRegression() || (c.Class == Inconclusive && t.Policy.FailInconclusive) {
				s.RegressedStatements += c.Count
			}
		}
	}
	for _, c := range classOrder {
		if stmts[c] > 0 || fps[c] > 0 {
			s.Classes = append(s.Classes, ClassCount{Class: c, Statements: stmts[c], Fingerprints: fps[c]})
		}
	}
	for _, d := range t.FinalState {
		if !d.AlsoInControl {
			s.TablesDiffering++
		}
	}
	var failedMigs []string
	if t.Migration != nil {
		for _, m := range t.Migration.Migrations {
			if m.Error != "" {
				s.MigrationsFailed++
				failedMigs = append(failedMigs, strings.TrimSpace(m.Version+" "+m.Name))
			}
		}
	}
	threshold, _ := lintThreshold(t.Policy.FailOnLint)
	for _, f := range t.Lint {
		switch f.Severity {
		case migrate.SeverityError:
			s.LintErrors++
		case migrate.SeverityWarning:
			s.LintWarnings++
		}
		if threshold > 0 && severityRank(f.Severity) >= threshold {
			s.LintFailing++
		}
	}
	t.Summary = s

	var reasons []string
	for _, c := range classOrder {
		n, stmtsN := 0, 0
		for _, f := range t.Findings {
			if f.Regression && f.Class == c {
				n++
				for _, sc := range f.Classes {
					stmtsN += sc.Count
				}
			}
		}
		if n == 0 {
			continue
		}
		reasons = append(reasons, fmt.Sprintf("%s: %s (%s)", c.Label(), plural(n, "fingerprint"), plural(stmtsN, "statement")))
	}
	if s.TablesDiffering > 0 {
		verb := "differ"
		if s.TablesDiffering == 1 {
			verb = "differs"
		}
		reasons = append(reasons, fmt.Sprintf("final state: %s %s after replay", plural(s.TablesDiffering, "table"), verb))
	}
	for _, m := range failedMigs {
		reasons = append(reasons, "migration failed: "+m)
	}
	if s.LintFailing > 0 {
		reasons = append(reasons, fmt.Sprintf("migration lint: %s at or above %s", plural(s.LintFailing, "finding"), lintLevel(t.Policy.FailOnLint)))
	}
	t.Verdict = verdict(countRegressions(s), reasons)
}

func lintLevel(s string) string {
	if s == "" {
		return "error"
	}
	return s
}

func severityRank(s migrate.Severity) int {
	switch s {
	case migrate.SeverityError:
		return 3
	case migrate.SeverityWarning:
		return 2
	case migrate.SeverityInfo:
		return 1
	}
	return 0
}

// countRegressions is what the headline counts: failing fingerprints,
// differing tables, failed migrations and failing lint findings.
func countRegressions(s Summary) int {
	return s.RegressedFingerprints + s.TablesDiffering + s.MigrationsFailed + s.LintFailing
}

func verdict(n int, reasons []string) Verdict {
	if n == 0 {
		return Verdict{Headline: "no regressions"}
	}
	return Verdict{Regressions: true, ExitCode: 1, Headline: plural(n, "regression"), Reasons: reasons}
}

func addSummary(a, b Summary) Summary {
	a.Statements += b.Statements
	a.Fingerprints += b.Fingerprints
	a.RegressedFingerprints += b.RegressedFingerprints
	a.RegressedStatements += b.RegressedStatements
	a.TablesDiffering += b.TablesDiffering
	a.MigrationsFailed += b.MigrationsFailed
	a.LintFailing += b.LintFailing
	a.LintErrors += b.LintErrors
	a.LintWarnings += b.LintWarnings
	idx := map[Class]int{}
	for i, c := range a.Classes {
		idx[c.Class] = i
	}
	for _, c := range b.Classes {
		if i, ok := idx[c.Class]; ok {
			a.Classes[i].Statements += c.Statements
			a.Classes[i].Fingerprints += c.Fingerprints
			continue
		}
		idx[c.Class] = len(a.Classes)
		a.Classes = append(a.Classes, c)
	}
	sort.SliceStable(a.Classes, func(i, j int) bool { return a.Classes[i].Class.Rank() > a.Classes[j].Class.Rank() })
	return a
}

// plural formats "1 table" / "3 tables".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
