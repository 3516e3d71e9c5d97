package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/migrate"
)

// JUnit renders JUnit XML in the common (Ant/Jenkins) schema that GitHub
// test reporters read: one <testsuite> per tenant with a <testcase> per
// statement fingerprint (a <failure> with the diff for a regression,
// <skipped> for ignored and skipped statements, <system-out> explaining
// noise), plus test cases for each final-state table difference, each
// migration and each lint finding. Times are in seconds, from the
// report's inputs (candidate statement time), never the wall clock.
type JUnit struct{}

// Name returns "junit".
func (JUnit) Name() string { return "junit" }

// Filename returns "junit.xml".
func (JUnit) Filename() string { return "junit.xml" }

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// Render writes the JUnit XML document.
func (JUnit) Render(w io.Writer, rep *compare.Report) error {
	r, err := Sanitize(rep)
	if err != nil {
		return fmt.Errorf("render junit: %w", err)
	}
	doc := junitSuites{Name: "dbtwin"}
	var total time.Duration
	for i := range r.Tenants {
		s := junitTenant(&r.Tenants[i])
		doc.Suites = append(doc.Suites, s)
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Skipped += s.Skipped
		total += r.Tenants[i].Inputs.Candidate.StatementTime
	}
	doc.Time = seconds(total)
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("render junit: %w", err)
	}
	if _, err := io.WriteString(w, xml.Header+string(out)+"\n"); err != nil {
		return fmt.Errorf("render junit: %w", err)
	}
	return nil
}

func junitTenant(t *compare.TenantReport) junitSuite {
	name := tenantName(t.Tenant)
	s := junitSuite{Name: "dbtwin." + name, Time: seconds(t.Inputs.Candidate.StatementTime)}
	s.Properties = []junitProperty{
		{"tenant", name},
		{"verdict", t.Verdict.Headline},
		{"statements", fmt.Sprint(t.Summary.Statements)},
		{"latency_rule", fmt.Sprintf("%s ≥ %.1f× and ≥ %s after %d warm-up", t.Policy.LatencyGate, t.Policy.LatencyRatio, fmtDur(t.Policy.LatencyFloor), t.Policy.WarmUp)},
	}
	lat := latencyByFP(t)
	class := "dbtwin." + name
	for _, f := range t.Findings {
		c := junitCase{Name: shortFP(f.Fingerprint) + ": " + clip(f.Example.SQL, 100), Classname: class + ".statements", Time: seconds(0)}
		l := lat[f.Fingerprint]
		if l != nil {
			c.Time = seconds(l.Candidate.P50)
		}
		switch {
		case f.Regression:
			c.Failure = &junitFailure{Type: string(f.Class), Message: failureMessage(f, l), Text: failureText(f, l)}
		case f.Class == compare.Ignored || f.Class == compare.Skipped:
			c.Skipped = &junitMessage{Message: f.Class.Label() + ": " + why(f, l)}
		case f.Class != compare.Same:
			c.SystemOut = f.Class.Label() + " (not a regression): " + why(f, l) + "\n" + findingSummary(f)
		}
		s.add(c)
	}
	for _, d := range t.FinalState {
		c := junitCase{Name: "table " + d.Table, Classname: class + ".final_state", Time: seconds(0)}
		text := fmt.Sprintf("rows baseline %d, candidate %d; %d chunks differ; sample keys: %s", d.RowsBaseline, d.RowsCandidate, d.ChunksDiffering, strings.Join(d.SampleKeys, ", "))
		if d.AlsoInControl {
			c.SystemOut = "noise: the control differs too. " + text
		} else {
			c.Failure = &junitFailure{Type: "final_state", Message: "table " + d.Table + " differs after replay", Text: text}
		}
		s.add(c)
	}
	views, _ := migrationViews(t.Migration)
	for _, m := range views {
		c := junitCase{Name: "migration " + m.Label, Classname: class + ".migrations", Time: seconds(m.Duration)}
		if m.Error != "" {
			c.Failure = &junitFailure{Type: "migration_failed", Message: clip(m.Error, 200), Text: m.Error}
		} else if m.Strongest != "" {
			c.SystemOut = "strongest lock: " + m.Strongest
		}
		s.add(c)
	}
	threshold := map[string]int{"error": 3, "warning": 2, "info": 1, "never": 0}[t.Policy.FailOnLint]
	for _, f := range t.Lint {
		c := junitCase{Name: fmt.Sprintf("lint %s %s:%d", f.Rule, f.File, f.Line), Classname: class + ".lint", Time: seconds(0)}
		text := lintText(f)
		if threshold > 0 && sevRank(f.Severity) >= threshold {
			c.Failure = &junitFailure{Type: f.Rule, Message: string(f.Severity) + ": " + clip(f.Message, 200), Text: text}
		} else {
			c.SystemOut = string(f.Severity) + " (does not fail the run): " + text
		}
		s.add(c)
	}
	return s
}

func (s *junitSuite) add(c junitCase) {
	s.Tests++
	if c.Failure != nil {
		s.Failures++
	}
	if c.Skipped != nil {
		s.Skipped++
	}
	s.Cases = append(s.Cases, c)
}

func failureMessage(f compare.Finding, l *compare.LatencyRow) string {
	if f.Class == compare.Slower && l != nil {
		return fmt.Sprintf("slower: %s %s → %s (%s)", "p95", fmtDur(l.Baseline.P95), fmtDur(l.Candidate.P95), fmtRatio(l.Ratio))
	}
	msg := f.Class.Label()
	if st := f.Example.Candidate.SQLState; st != "" {
		msg += " " + st
	}
	if m := f.Example.Candidate.Message; m != "" && f.Example.Candidate.Status != "ok" {
		msg += ": " + m
	}
	return clip(msg, 200)
}

func failureText(f compare.Finding, l *compare.LatencyRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nsession %s, seq %d\nbaseline: %s\ncandidate: %s\n", f.Example.SQL, f.Example.Session, f.Example.Seq,
		outcome(f.Example.Baseline), outcome(f.Example.Candidate))
	if f.Example.Diff != nil {
		b.WriteString("\n" + unified(f.Example.Diff.Lines))
		if f.Example.Diff.Note != "" {
			b.WriteString("(" + f.Example.Diff.Note + ")\n")
		}
	}
	if l != nil && l.Class == compare.Slower {
		fmt.Fprintf(&b, "\nlatency p50 %s → %s, p95 %s → %s (%s)\n", fmtDur(l.Baseline.P50), fmtDur(l.Candidate.P50), fmtDur(l.Baseline.P95), fmtDur(l.Candidate.P95), fmtRatio(l.Ratio))
		if l.Plans != nil {
			b.WriteString("\nplan diff:\n" + unified(compare.DiffText(l.Plans.Baseline, l.Plans.Candidate, 200)))
		}
	}
	b.WriteString(findingSummary(f))
	return b.String()
}

func findingSummary(f compare.Finding) string {
	var parts []string
	for _, c := range f.Classes {
		parts = append(parts, fmt.Sprintf("%s %d", c.Class.Label(), c.Count))
	}
	return "statements: " + strings.Join(parts, ", ") + "\n"
}

func lintText(f migrate.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: %s %s (%s): %s\nstatement: %s\n", f.File, f.Line, f.Rule, f.Severity, f.Name, f.Message, f.Statement)
	if f.Lock != "" {
		fmt.Fprintf(&b, "lock: %s\n", f.Lock)
	}
	fmt.Fprintf(&b, "fix: %s\n", f.Fix)
	for _, q := range f.Queries {
		fmt.Fprintf(&b, "breaks: [%s ×%d] %s (%s)\n", shortFP(q.Fingerprint), q.Count, q.SQL, q.Uses)
	}
	return b.String()
}

func severity(s string) migrate.Severity { return migrate.Severity(s) }

func sevRank(s migrate.Severity) int {
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

// seconds formats a duration as JUnit's decimal seconds.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}
