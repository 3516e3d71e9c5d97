package reports

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/internal/termtable"
)

// Terminal renders the report for a terminal or a CI log with tablewriter:
// the verdict, a summary per tenant, then the worst regressions with their
// diffs, slower statements, final-state differences, migrations and lint.
type Terminal struct {
	// MaxRegressions caps the regressions listed (default 10) and
	// MaxDiffs those shown with their diff (default 3).
	MaxRegressions int
	MaxDiffs       int
}

// Name returns "terminal".
func (Terminal) Name() string { return "terminal" }

// Filename returns "report.txt".
func (Terminal) Filename() string { return "report.txt" }

// Render writes the terminal report.
func (t Terminal) Render(w io.Writer, rep *compare.Report) error {
	r, err := Sanitize(rep)
	if err != nil {
		return fmt.Errorf("render terminal: %w", err)
	}
	maxReg, maxDiffs := t.MaxRegressions, t.MaxDiffs
	if maxReg <= 0 {
		maxReg = 10
	}
	if maxDiffs <= 0 {
		maxDiffs = 3
	}
	var b bytes.Buffer
	if err := renderTerminal(&b, r, maxReg, maxDiffs); err != nil {
		return fmt.Errorf("render terminal: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("render terminal: %w", err)
	}
	return nil
}

func renderTerminal(b *bytes.Buffer, r *compare.Report, maxReg, maxDiffs int) error {
	mark := "PASS"
	if r.Verdict.Regressions {
		mark = "FAIL"
	}
	fmt.Fprintf(b, "dbtwin: %s: %s (%s, %s, %s)\n", mark, r.Verdict.Headline,
		plural(len(r.Tenants), "tenant"), plural(r.Summary.Statements, "statement"), plural(r.Summary.Fingerprints, "fingerprint"))
	for _, why := range r.Verdict.Reasons {
		fmt.Fprintf(b, "  - %s\n", why)
	}
	b.WriteString("\n")

	tt := termtable.New(b, "TENANT", "VERDICT", "STATEMENTS", "FINGERPRINTS", "REGRESSED", "NOISE", "SLOWER", "TABLES DIFFER", "LINT E/W")
	for i := range r.Tenants {
		x := &r.Tenants[i]
		if err := tt.Append(tenantName(x.Tenant), x.Verdict.Headline, fmt.Sprint(x.Summary.Statements), fmt.Sprint(x.Summary.Fingerprints),
			fmt.Sprint(x.Summary.RegressedFingerprints), fmt.Sprint(noiseCount(x.Summary)), fmt.Sprint(slowerCount(x)),
			fmt.Sprint(x.Summary.TablesDiffering), fmt.Sprintf("%d/%d", x.Summary.LintErrors, x.Summary.LintWarnings)); err != nil {
			return err
		}
	}
	if err := tt.Render(); err != nil {
		return err
	}

	b.WriteString("\nStatements by class (all tenants):\n")
	ct := termtable.New(b, "CLASS", "STATEMENTS", "FINGERPRINTS", "FAILS")
	for _, c := range r.Summary.Classes {
		fails := ""
		if c.Class.IsRegression() {
			fails = "yes"
		}
		if err := ct.Append(c.Class.Label(), fmt.Sprint(c.Statements), fmt.Sprint(c.Fingerprints), fails); err != nil {
			return err
		}
	}
	if err := ct.Render(); err != nil {
		return err
	}

	type reg struct {
		tenant string
		f      compare.Finding
		lat    *compare.LatencyRow
	}
	var regs []reg
	for i := range r.Tenants {
		x := &r.Tenants[i]
		lat := latencyByFP(x)
		for _, f := range regressions(x) {
			regs = append(regs, reg{x.Tenant, f, lat[f.Fingerprint]})
		}
	}
	if len(regs) > 0 {
		fmt.Fprintf(b, "\nWorst regressions (%d of %d):\n", min(len(regs), maxReg), len(regs))
		rt := termtable.New(b, "TENANT", "CLASS", "FINGERPRINT", "COUNT", "EXAMPLE", "SQLSTATE", "STATEMENT")
		for _, x := range regs[:min(len(regs), maxReg)] {
			state := x.f.Example.Candidate.SQLState
			if err := rt.Append(tenantName(x.tenant), x.f.Class.Label(), shortFP(x.f.Fingerprint), fmt.Sprint(x.f.Count),
				fmt.Sprintf("%s/%d", x.f.Example.Session, x.f.Example.Seq), state, clip(x.f.Example.SQL, 60)); err != nil {
				return err
			}
		}
		if err := rt.Render(); err != nil {
			return err
		}
		for _, x := range regs[:min(len(regs), maxDiffs)] {
			fmt.Fprintf(b, "\n%s %s %s (session %s, seq %d):\n  %s\n", tenantName(x.tenant), x.f.Class.Label(), shortFP(x.f.Fingerprint),
				x.f.Example.Session, x.f.Example.Seq, clip(x.f.Example.SQL, 200))
			if x.f.Example.Diff != nil {
				b.WriteString(indent(diffText(x.f.Example.Diff), "  "))
			} else if x.lat != nil {
				fmt.Fprintf(b, "  p95 %s → %s (%s)\n", fmtDur(x.lat.Baseline.P95), fmtDur(x.lat.Candidate.P95), fmtRatio(x.lat.Ratio))
			}
		}
	}

	var slow [][]string
	for i := range r.Tenants {
		x := &r.Tenants[i]
		for _, l := range x.Latency {
			if l.Class == compare.Slower {
				slow = append(slow, []string{tenantName(x.Tenant), shortFP(l.Fingerprint),
					fmtDur(l.Baseline.P50) + " / " + fmtDur(l.Baseline.P95), fmtDur(l.Candidate.P50) + " / " + fmtDur(l.Candidate.P95),
					fmtRatio(l.Ratio), clip(l.SQL, 60)})
			}
		}
	}
	if len(slow) > 0 {
		b.WriteString("\nSlower statements (p50 / p95 after warm-up):\n")
		if err := table(b, []string{"TENANT", "FINGERPRINT", "BASELINE", "CANDIDATE", "RATIO", "STATEMENT"}, slow); err != nil {
			return err
		}
	}

	var state [][]string
	for i := range r.Tenants {
		x := &r.Tenants[i]
		for _, d := range x.FinalState {
			note := ""
			if d.AlsoInControl {
				note = "noise (control differs too)"
			}
			state = append(state, []string{tenantName(x.Tenant), d.Table, fmt.Sprint(d.RowsBaseline), fmt.Sprint(d.RowsCandidate),
				fmt.Sprint(d.ChunksDiffering), clip(strings.Join(d.SampleKeys, ", "), 40), note})
		}
	}
	if len(state) > 0 {
		b.WriteString("\nFinal state differences:\n")
		if err := table(b, []string{"TENANT", "TABLE", "ROWS BASELINE", "ROWS CANDIDATE", "CHUNKS", "SAMPLE KEYS", "NOTE"}, state); err != nil {
			return err
		}
	}

	var migs [][]string
	for i := range r.Tenants {
		x := &r.Tenants[i]
		views, _ := migrationViews(x.Migration)
		for _, m := range views {
			status := "ok"
			if m.Error != "" {
				status = "FAILED: " + clip(m.Error, 50)
			}
			migs = append(migs, []string{tenantName(x.Tenant), m.Label, fmtDur(m.Duration), m.Strongest, strings.Join(m.Rewritten, ", "), status})
		}
	}
	if len(migs) > 0 {
		b.WriteString("\nMigrations:\n")
		if err := table(b, []string{"TENANT", "MIGRATION", "DURATION", "STRONGEST LOCK", "REWRITTEN", "STATUS"}, migs); err != nil {
			return err
		}
	}

	var lint [][]string
	for i := range r.Tenants {
		x := &r.Tenants[i]
		for _, f := range x.Lint {
			lint = append(lint, []string{tenantName(x.Tenant), f.Rule, string(f.Severity), fmt.Sprintf("%s:%d", f.File, f.Line), clip(f.Message, 70)})
		}
	}
	if len(lint) > 0 {
		b.WriteString("\nMigration lint:\n")
		if err := table(b, []string{"TENANT", "RULE", "SEVERITY", "WHERE", "MESSAGE"}, lint); err != nil {
			return err
		}
	}
	for _, n := range r.Meta.Notes {
		fmt.Fprintf(b, "\nnote: %s\n", n)
	}
	return nil
}

func table(b *bytes.Buffer, header []string, rows [][]string) error {
	t := termtable.New(b, header...)
	for _, row := range rows {
		if err := t.Append(row); err != nil {
			return err
		}
	}
	return t.Render()
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
