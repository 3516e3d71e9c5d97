package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/dbtwin/dbtwin/compare"
)

// Renderer writes a report in one format.
//
// Render must not modify r, must be deterministic (the same report gives
// the same bytes) and must pass every string it writes through Redact
// (the renderers here do so by rendering Sanitize(r)), so that no
// connection string or password reaches an output even if one slipped
// into a field.
type Renderer interface {
	// Name is the format's name as --format spells it ("markdown").
	Name() string
	// Render writes r to w.
	Render(w io.Writer, r *compare.Report) error
}

// Filenamer is the optional ability of a Renderer to name the file it
// should be written to in a report directory.
type Filenamer interface {
	Filename() string
}

var (
	_ Renderer  = Terminal{}
	_ Renderer  = Markdown{}
	_ Renderer  = JUnit{}
	_ Renderer  = JSON{}
	_ Renderer  = HTML{}
	_ Filenamer = Markdown{}
)

// Names lists the built-in formats, sorted.
func Names() []string {
	return []string{"html", "json", "junit", "markdown", "terminal"}
}

// New returns the built-in renderer of a format with default settings.
func New(name string) (Renderer, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "terminal", "text":
		return Terminal{}, nil
	case "markdown", "md":
		return Markdown{}, nil
	case "junit", "xml":
		return JUnit{}, nil
	case "json":
		return JSON{}, nil
	case "html":
		return HTML{}, nil
	}
	return nil, fmt.Errorf("new renderer: unknown format %q: want one of %s", name, strings.Join(Names(), ", "))
}

// Filename returns the file name a renderer's output gets in a report
// directory: its Filename when it has one, else "report." + Name().
func Filename(r Renderer) string {
	if f, ok := r.(Filenamer); ok {
		return f.Filename()
	}
	return "report." + r.Name()
}

// tenantName shows a tenant's name, or a placeholder for the unnamed one.
func tenantName(t string) string {
	if t == "" {
		return "default"
	}
	return t
}

// shortFP shortens a fingerprint for tables.
func shortFP(fp string) string {
	if strings.HasPrefix(fp, "sql:") {
		fp = fp[4:]
	}
	if len(fp) > 8 {
		return fp[:8]
	}
	return fp
}

// clip cuts s to n runes with "…".
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// regressions returns the failing findings of a tenant, worst first (the
// order compare sorted them in).
func regressions(t *compare.TenantReport) []compare.Finding {
	var out []compare.Finding
	for _, f := range t.Findings {
		if f.Regression {
			out = append(out, f)
		}
	}
	return out
}

// others returns findings that differ but do not fail: noise, expected
// noise, inconclusive, ignored, fixed errors, faster.
func others(t *compare.TenantReport) []compare.Finding {
	var out []compare.Finding
	for _, f := range t.Findings {
		if !f.Regression && f.Class != compare.Same && f.Class != compare.Skipped {
			out = append(out, f)
		}
	}
	return out
}

// latencyByFP indexes a tenant's latency rows.
func latencyByFP(t *compare.TenantReport) map[string]*compare.LatencyRow {
	m := map[string]*compare.LatencyRow{}
	for i := range t.Latency {
		m[t.Latency[i].Fingerprint] = &t.Latency[i]
	}
	return m
}

// classCount returns the fingerprints of a class in a summary.
func classCount(s compare.Summary, c compare.Class) (stmts, fps int) {
	for _, x := range s.Classes {
		if x.Class == c {
			return x.Statements, x.Fingerprints
		}
	}
	return 0, 0
}

// noiseCount counts noise and expected-noise statements.
func noiseCount(s compare.Summary) int {
	a, _ := classCount(s, compare.Noise)
	b, _ := classCount(s, compare.ExpectedNoise)
	return a + b
}

// slowerCount counts slower fingerprints.
func slowerCount(t *compare.TenantReport) int {
	n := 0
	for _, l := range t.Latency {
		if l.Class == compare.Slower {
			n++
		}
	}
	return n
}

// outcome describes one side's outcome on a line.
func outcome(o compare.Outcome) string {
	switch o.Status {
	case "ok":
		s := "ok"
		if o.Tag != "" {
			s += " " + o.Tag
		}
		return s
	case "missing", "":
		return "missing"
	}
	s := o.Status
	if o.SQLState != "" {
		s += " " + o.SQLState
	}
	if o.Message != "" {
		s += ": " + o.Message
	}
	return s
}

// diffText renders a diff as unified-style text lines.
func diffText(d *compare.Diff) string {
	if d == nil {
		return ""
	}
	var b strings.Builder
	for _, l := range d.Lines {
		switch l.Op {
		case compare.DiffEqual:
			b.WriteString("  " + l.Text + "\n")
		case compare.DiffDelete:
			b.WriteString("- " + l.Text + "\n")
		case compare.DiffInsert:
			b.WriteString("+ " + l.Text + "\n")
		default:
			b.WriteString("  … " + l.Text + "\n")
		}
	}
	if d.Note != "" {
		b.WriteString("  (" + d.Note + ")\n")
	}
	return b.String()
}

// why explains a finding that is not a plain regression: the latency
// change when latency set its class, else the difference behind it and
// compare's reason.
func why(f compare.Finding, l *compare.LatencyRow) string {
	if f.Class != f.Example.Class && l != nil && l.Class == f.Class {
		return fmt.Sprintf("latency p95 %s → %s (%s)", fmtDur(l.Baseline.P95), fmtDur(l.Candidate.P95), fmtRatio(l.Ratio))
	}
	w := f.Example.Reason
	if f.Example.Underlying != "" {
		w = f.Example.Underlying.Label() + ": " + w
	}
	return w
}
