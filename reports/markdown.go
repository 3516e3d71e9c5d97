package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/dbtwin/dbtwin/compare"
)

// DefaultMarkdownMaxBytes is GitHub's limit for one step summary
// ($GITHUB_STEP_SUMMARY, 1 MiB); a PR comment allows 65,536 characters
// (set MaxBytes to 65000 for one).
const DefaultMarkdownMaxBytes = 1 << 20

// Markdown renders GitHub-flavoured Markdown for a step summary or a pull
// request comment: a ✅/❌ headline with the reasons, a summary table,
// then per tenant the regressions (each with its diff in a collapsible
// <details>), slower statements with plan diffs, noise, final state,
// migrations and lint. Output longer than MaxBytes is cut at a section
// boundary with a note saying what was left out.
//
// All text from the report is escaped: HTML-significant characters and
// Markdown punctuation become entities, so nothing in a statement or an
// error message can inject markup; diffs go in fenced code blocks whose
// fence is longer than any backtick run inside.
type Markdown struct {
	// MaxBytes caps the output (default DefaultMarkdownMaxBytes).
	MaxBytes int
	// MaxRows caps the rows of each table (default 50).
	MaxRows int
}

// Name returns "markdown".
func (Markdown) Name() string { return "markdown" }

// Filename returns "report.md".
func (Markdown) Filename() string { return "report.md" }

// Render writes the Markdown report.
func (m Markdown) Render(w io.Writer, rep *compare.Report) error {
	r, err := Sanitize(rep)
	if err != nil {
		return fmt.Errorf("render markdown: %w", err)
	}
	limit, maxRows := m.MaxBytes, m.MaxRows
	if limit <= 0 {
		limit = DefaultMarkdownMaxBytes
	}
	if maxRows <= 0 {
		maxRows = 50
	}
	head, blocks := markdownBlocks(r, maxRows)
	var b strings.Builder
	b.WriteString(head)
	const reserve = 400 // room for the truncation note
	left := 0
	for i, blk := range blocks {
		if b.Len()+len(blk)+reserve > limit {
			left = len(blocks) - i
			break
		}
		b.WriteString(blk)
	}
	if left > 0 {
		fmt.Fprintf(&b, "\n> [!WARNING]\n> Report truncated to fit %d bytes: %s left out. The HTML and JSON reports have everything.\n", limit, plural(left, "section"))
	}
	out := b.String()
	if len(out) > limit { // the head alone is too long: cut at a line
		cut := strings.LastIndexByte(out[:limit-reserve], '\n')
		out = out[:max(cut, 0)] + "\n\n> [!WARNING]\n> Report truncated: the summary alone exceeds the size limit.\n"
	}
	if _, err := io.WriteString(w, out); err != nil {
		return fmt.Errorf("render markdown: %w", err)
	}
	return nil
}

// markdownBlocks returns the part always written (headline and summary)
// and the sections that follow, in order of importance.
func markdownBlocks(r *compare.Report, maxRows int) (string, []string) {
	var h strings.Builder
	if r.Verdict.Regressions {
		fmt.Fprintf(&h, "## ❌ dbtwin: %s\n\n", mdText(r.Verdict.Headline))
	} else {
		fmt.Fprintf(&h, "## ✅ dbtwin: %s\n\n", mdText(r.Verdict.Headline))
	}
	fmt.Fprintf(&h, "%s · %s · %s", plural(len(r.Tenants), "tenant"), plural(r.Summary.Statements, "statement"), plural(r.Summary.Fingerprints, "fingerprint"))
	if r.Meta.DbtwinVersion != "" {
		fmt.Fprintf(&h, " · dbtwin %s", mdText(r.Meta.DbtwinVersion))
	}
	h.WriteString("\n\n")
	for _, why := range r.Verdict.Reasons {
		fmt.Fprintf(&h, "- %s\n", mdText(why))
	}
	if len(r.Verdict.Reasons) > 0 {
		h.WriteString("\n")
	}
	h.WriteString("| Tenant | Verdict | Statements | Fingerprints | Regressed | Noise | Slower | Tables differ | Lint errors / warnings |\n")
	h.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for i := range r.Tenants {
		x := &r.Tenants[i]
		mark := "✅"
		if x.Verdict.Regressions {
			mark = "❌"
		}
		fmt.Fprintf(&h, "| %s | %s %s | %d | %d | %d | %d | %d | %d | %d / %d |\n", mdText(tenantName(x.Tenant)), mark, mdText(x.Verdict.Headline),
			x.Summary.Statements, x.Summary.Fingerprints, x.Summary.RegressedFingerprints, noiseCount(x.Summary), slowerCount(x),
			x.Summary.TablesDiffering, x.Summary.LintErrors, x.Summary.LintWarnings)
	}
	h.WriteString("\n")
	for _, n := range r.Meta.Notes {
		fmt.Fprintf(&h, "> %s\n\n", mdText(n))
	}

	var blocks []string
	for i := range r.Tenants {
		blocks = append(blocks, tenantMarkdown(&r.Tenants[i], len(r.Tenants) > 1 || r.Tenants[i].Tenant != "", maxRows)...)
	}
	return h.String(), blocks
}

func tenantMarkdown(t *compare.TenantReport, titled bool, maxRows int) []string {
	var blocks []string
	prefix := ""
	if titled {
		mark := "✅"
		if t.Verdict.Regressions {
			mark = "❌"
		}
		blocks = append(blocks, fmt.Sprintf("### %s Tenant %s: %s\n\n", mark, mdText(tenantName(t.Tenant)), mdText(t.Verdict.Headline)))
		prefix = mdText(tenantName(t.Tenant)) + ": "
	}
	lat := latencyByFP(t)

	if regs := regressions(t); len(regs) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "#### %sRegressions by fingerprint\n\n", prefix)
		b.WriteString("| Class | Fingerprint | Statements | Example | SQLSTATE | Statement |\n| --- | --- | ---: | --- | --- | --- |\n")
		for _, f := range regs[:min(len(regs), maxRows)] {
			fmt.Fprintf(&b, "| %s | <code>%s</code> | %d | %s | %s | <code>%s</code> |\n", mdText(f.Class.Label()), mdText(shortFP(f.Fingerprint)), f.Count,
				mdText(fmt.Sprintf("%s/%d", f.Example.Session, f.Example.Seq)), mdText(f.Example.Candidate.SQLState), mdText(clip(f.Example.SQL, 120)))
		}
		if len(regs) > maxRows {
			fmt.Fprintf(&b, "\n%d more regressions are in the HTML and JSON reports.\n", len(regs)-maxRows)
		}
		b.WriteString("\n")
		blocks = append(blocks, b.String())
		for _, f := range regs[:min(len(regs), maxRows)] {
			blocks = append(blocks, findingDetails(f, lat[f.Fingerprint]))
		}
	}

	var slow []*compare.LatencyRow
	for i := range t.Latency {
		if t.Latency[i].Class == compare.Slower {
			slow = append(slow, &t.Latency[i])
		}
	}
	if len(slow) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "#### %sSlower statements\n\n", prefix)
		fmt.Fprintf(&b, "%s quantile after warm-up of %d; a regression needs ≥ %.1f× and ≥ %s more.\n\n", mdText(t.Policy.LatencyGate), t.Policy.WarmUp, t.Policy.LatencyRatio, fmtDur(t.Policy.LatencyFloor))
		b.WriteString("| Fingerprint | Baseline p50 / p95 | Candidate p50 / p95 | Ratio | Runs | Statement |\n| --- | ---: | ---: | ---: | ---: | --- |\n")
		for _, l := range slow[:min(len(slow), maxRows)] {
			fmt.Fprintf(&b, "| <code>%s</code> | %s / %s | %s / %s | %s | %d / %d | <code>%s</code> |\n", mdText(shortFP(l.Fingerprint)),
				fmtDur(l.Baseline.P50), fmtDur(l.Baseline.P95), fmtDur(l.Candidate.P50), fmtDur(l.Candidate.P95), fmtRatio(l.Ratio),
				l.Baseline.N, l.Candidate.N, mdText(clip(l.SQL, 120)))
		}
		b.WriteString("\n")
		for _, l := range slow[:min(len(slow), maxRows)] {
			if l.Plans == nil {
				continue
			}
			fmt.Fprintf(&b, "<details><summary>Plan diff of <code>%s</code></summary>\n\n%s\n</details>\n\n", mdText(shortFP(l.Fingerprint)),
				fence("diff", unified(compare.DiffText(l.Plans.Baseline, l.Plans.Candidate, 200))))
		}
		blocks = append(blocks, b.String())
	}

	if ds := t.FinalState; len(ds) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "#### %sFinal state after replay\n\n", prefix)
		b.WriteString("| Table | Rows baseline | Rows candidate | Chunks differing | Sample keys | Note |\n| --- | ---: | ---: | ---: | --- | --- |\n")
		for _, d := range ds[:min(len(ds), maxRows)] {
			note := "regression"
			if d.AlsoInControl {
				note = "noise: control differs too"
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %s | %s |\n", mdText(d.Table), d.RowsBaseline, d.RowsCandidate, d.ChunksDiffering,
				mdText(clip(strings.Join(d.SampleKeys, ", "), 80)), note)
		}
		b.WriteString("\n")
		blocks = append(blocks, b.String())
	}

	if len(t.Lint) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "#### %sMigration lint\n\n", prefix)
		b.WriteString("| Rule | Severity | Where | Problem | Lock | Fix |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, f := range t.Lint[:min(len(t.Lint), maxRows)] {
			fmt.Fprintf(&b, "| %s %s | %s | %s | %s | %s | %s |\n", mdText(f.Rule), mdText(f.Name), mdText(string(f.Severity)),
				mdText(fmt.Sprintf("%s:%d", f.File, f.Line)), mdText(f.Message), mdText(f.Lock), mdText(f.Fix))
		}
		b.WriteString("\n")
		blocks = append(blocks, b.String())
	}

	if views, total := migrationViews(t.Migration); len(views) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "<details><summary>%sMigrations: %s in %s</summary>\n\n", prefix, plural(len(views), "migration"), fmtDur(total))
		b.WriteString("| Migration | Duration | Strongest lock held | Rewritten | Status |\n| --- | ---: | --- | --- | --- |\n")
		for _, m := range views {
			status := "ok"
			if m.Error != "" {
				status = "❌ " + mdText(clip(m.Error, 120))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", mdText(m.Label), fmtDur(m.Duration), mdText(m.Strongest), mdText(strings.Join(m.Rewritten, ", ")), status)
		}
		b.WriteString("\n</details>\n\n")
		blocks = append(blocks, b.String())
	}

	if oth := others(t); len(oth) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "<details><summary>%sNot regressions: %s (noise, expected noise, fixed errors, faster …)</summary>\n\n", prefix, plural(len(oth), "fingerprint"))
		b.WriteString("| Class | Fingerprint | Statements | Why | Statement |\n| --- | --- | ---: | --- | --- |\n")
		for _, f := range oth[:min(len(oth), maxRows)] {
			fmt.Fprintf(&b, "| %s | <code>%s</code> | %d | %s | <code>%s</code> |\n", mdText(f.Class.Label()), mdText(shortFP(f.Fingerprint)), f.Count,
				mdText(why(f, lat[f.Fingerprint])), mdText(clip(f.Example.SQL, 100)))
		}
		b.WriteString("\n</details>\n\n")
		blocks = append(blocks, b.String())
	}
	return blocks
}

// findingDetails is a collapsible section with a regression's evidence.
func findingDetails(f compare.Finding, l *compare.LatencyRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary>%s · <code>%s</code> · %s</summary>\n\n", mdText(f.Class.Label()), mdText(shortFP(f.Fingerprint)), mdText(clip(f.Example.SQL, 80)))
	fmt.Fprintf(&b, "%s\n\n", fence("sql", lineBreaks.Replace(f.Example.SQL)))
	fmt.Fprintf(&b, "Session %s, seq %d. Baseline: %s. Candidate: %s.\n\n", mdText(f.Example.Session), f.Example.Seq,
		mdText(outcome(f.Example.Baseline)), mdText(outcome(f.Example.Candidate)))
	if f.Example.Diff != nil {
		fmt.Fprintf(&b, "%s\n\n", fence("diff", unified(f.Example.Diff.Lines)))
		if f.Example.Diff.Note != "" {
			fmt.Fprintf(&b, "_%s_\n\n", mdText(f.Example.Diff.Note))
		}
	}
	if l != nil && l.Class == compare.Slower {
		fmt.Fprintf(&b, "Latency p95 %s → %s (%s).\n\n", fmtDur(l.Baseline.P95), fmtDur(l.Candidate.P95), fmtRatio(l.Ratio))
	}
	var counts []string
	for _, c := range f.Classes {
		counts = append(counts, fmt.Sprintf("%s %d", c.Class.Label(), c.Count))
	}
	fmt.Fprintf(&b, "Statements: %s.\n\n</details>\n\n", mdText(strings.Join(counts, ", ")))
	return b.String()
}

// lineBreaks keeps a value on its line inside a diff.
var lineBreaks = strings.NewReplacer("\r\n", `\n`, "\n", `\n`, "\r", `\r`)

// unified renders diff lines as a unified diff body, one line each.
func unified(lines []compare.DiffLine) string {
	var b strings.Builder
	for _, l := range lines {
		l.Text = lineBreaks.Replace(l.Text)
		switch l.Op {
		case compare.DiffDelete:
			b.WriteString("-" + l.Text + "\n")
		case compare.DiffInsert:
			b.WriteString("+" + l.Text + "\n")
		case compare.DiffElided:
			b.WriteString("@@ " + l.Text + " @@\n")
		default:
			b.WriteString(" " + l.Text + "\n")
		}
	}
	return b.String()
}

// fence puts text in a fenced code block whose fence is longer than any
// backtick run in it.
func fence(lang, text string) string {
	longest, run := 0, 0
	for _, c := range text {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	f := strings.Repeat("`", max(3, longest+1))
	return f + lang + "\n" + strings.TrimRight(text, "\n") + "\n" + f
}

// mdEscaper turns characters that Markdown or HTML would interpret into
// entities, and line breaks into spaces, for text in paragraphs, table
// cells and <summary>.
var mdEscaper = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "|", "&#124;", "\\", "&#92;", "`", "&#96;",
	"*", "&#42;", "_", "&#95;", "[", "&#91;", "]", "&#93;", "~", "&#126;", "#", "&#35;", "!", "&#33;",
	"\r\n", " ", "\n", " ", "\r", " ",
)

func mdText(s string) string { return mdEscaper.Replace(s) }
