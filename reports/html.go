package reports

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/dbtwin/dbtwin/compare"
)

// HTML renders one self-contained HTML page (inline CSS and SVG, no
// script, no external asset): the verdict, a summary, per tenant the
// regressions by fingerprint with their diffs, a latency plot of baseline
// vs candidate (log scale), plan diffs, final-state differences, a
// migration timeline with the locks held, lint findings and the
// differences that are not regressions. Every value is HTML-escaped
// (html/template, and esc for the generated SVG).
type HTML struct {
	// MaxFindings caps the regressions shown per tenant (default 200);
	// MaxPlotRows the fingerprints in the latency plot (default 40).
	MaxFindings int
	MaxPlotRows int
}

// Name returns "html".
func (HTML) Name() string { return "html" }

// Filename returns "report.html".
func (HTML) Filename() string { return "report.html" }

type htmlPage struct {
	R       *compare.Report
	Tenants []htmlTenant
	Named   bool
}

type htmlTenant struct {
	T         *compare.TenantReport
	ID        string
	Name      string
	Regs      []htmlFinding
	RegsMore  int
	Others    []htmlOther
	Slow      []htmlLatency
	Plot      template.HTML
	Timeline  template.HTML
	Migs      []migView
	MigsTotal string
	Noise     int
	Slower    int
}

type htmlFinding struct {
	F   compare.Finding
	Lat *compare.LatencyRow
}

type htmlOther struct {
	F   compare.Finding
	Why string
}

type htmlLatency struct {
	L        compare.LatencyRow
	PlanDiff []compare.DiffLine
}

// Render writes the HTML page.
func (h HTML) Render(w io.Writer, rep *compare.Report) error {
	r, err := Sanitize(rep)
	if err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	maxF, maxPlot := h.MaxFindings, h.MaxPlotRows
	if maxF <= 0 {
		maxF = 200
	}
	if maxPlot <= 0 {
		maxPlot = 40
	}
	page := htmlPage{R: r, Named: len(r.Tenants) > 1 || (len(r.Tenants) == 1 && r.Tenants[0].Tenant != "")}
	for i := range r.Tenants {
		t := &r.Tenants[i]
		ht := htmlTenant{T: t, ID: fmt.Sprintf("tenant-%d", i+1), Name: tenantName(t.Tenant), Noise: noiseCount(t.Summary), Slower: slowerCount(t)}
		lat := latencyByFP(t)
		for _, f := range others(t) {
			ht.Others = append(ht.Others, htmlOther{F: f, Why: why(f, lat[f.Fingerprint])})
		}
		regs := regressions(t)
		if len(regs) > maxF {
			ht.RegsMore = len(regs) - maxF
			regs = regs[:maxF]
		}
		for _, f := range regs {
			ht.Regs = append(ht.Regs, htmlFinding{F: f, Lat: lat[f.Fingerprint]})
		}
		for _, l := range t.Latency {
			if l.Class != compare.Slower {
				continue
			}
			hl := htmlLatency{L: l}
			if l.Plans != nil {
				hl.PlanDiff = compare.DiffText(l.Plans.Baseline, l.Plans.Candidate, 400)
			}
			ht.Slow = append(ht.Slow, hl)
		}
		ht.Plot = latencyPlot(t.Latency, maxPlot)
		views, total := migrationViews(t.Migration)
		ht.Migs, ht.MigsTotal = views, fmtDur(total)
		ht.Timeline = migrationTimeline(views, total)
		page.Tenants = append(page.Tenants, ht)
	}
	var b bytes.Buffer
	if err := htmlTemplate.Execute(&b, page); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	return nil
}

// htmlFuncs are the template's helpers (an immutable table).
var htmlFuncs = template.FuncMap{
	"dur":     fmtDur,
	"ratio":   fmtRatio,
	"fp":      shortFP,
	"clip":    clip,
	"outcome": outcome,
	"label":   func(c compare.Class) string { return c.Label() },
	"cls":     func(c compare.Class) string { return strings.ReplaceAll(string(c), "_", "-") },
	"tenant":  tenantName,
	"join":    strings.Join,
	"plural":  plural,
	"failing": func(c compare.Class) bool { return c.IsRegression() },
	"lintfails": func(t *compare.TenantReport, s string) bool {
		th := map[string]int{"error": 3, "warning": 2, "info": 1, "never": 0}[t.Policy.FailOnLint]
		return th > 0 && sevRank(severity(s)) >= th
	},
	"opclass": func(op compare.DiffOp) string {
		switch op {
		case compare.DiffDelete:
			return "del"
		case compare.DiffInsert:
			return "ins"
		case compare.DiffElided:
			return "gap"
		}
		return "eq"
	},
	"opmark": func(op compare.DiffOp) string {
		switch op {
		case compare.DiffDelete:
			return "- "
		case compare.DiffInsert:
			return "+ "
		case compare.DiffElided:
			return "… "
		}
		return "  "
	},
}

// htmlTemplate is the page (immutable once parsed).
var htmlTemplate = template.Must(template.New("report").Funcs(htmlFuncs).Parse(htmlSource))

const htmlSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dbtwin report: {{.R.Verdict.Headline}}</title>
<style>
:root { --red: #d73a49; --green: #1f883d; --amber: #9a6700; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; background: #fff; }
main { max-width: 1040px; margin: 0 auto; padding: 0 20px 40px; }
header.verdict { padding: 22px 20px; color: #fff; }
header.verdict > div { max-width: 1000px; margin: 0 auto; }
header.verdict.fail { background: var(--red); }
header.verdict.pass { background: var(--green); }
header.verdict h1 { margin: 0 0 4px; font-size: 26px; }
header.verdict p { margin: 0; opacity: .92; }
header.verdict ul { margin: 10px 0 0; padding-left: 20px; }
h2 { margin: 34px 0 8px; padding-bottom: 6px; border-bottom: 1px solid var(--line); font-size: 21px; }
h3 { margin: 26px 0 8px; font-size: 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 20px 0; }
.card { flex: 1 1 120px; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; background: var(--soft); }
.card b { display: block; font-size: 22px; }
.card.bad b { color: var(--red); }
.card span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 14px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre { font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
td code { word-break: break-word; }
pre { margin: 6px 0; padding: 8px 10px; background: var(--soft); border: 1px solid var(--line); border-radius: 6px; white-space: pre-wrap; word-break: break-all; }
pre.diff span { display: block; }
pre.diff .del { background: #ffebe9; color: #82071e; }
pre.diff .ins { background: #dafbe1; color: #116329; }
pre.diff .gap { color: var(--muted); font-style: italic; }
.finding { border: 1px solid var(--line); border-left: 4px solid var(--red); border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.finding header { display: flex; flex-wrap: wrap; gap: 8px; align-items: baseline; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: #eaeef2; color: #1f2328; white-space: nowrap; }
.badge.fail { background: var(--red); color: #fff; }
.badge.noise, .badge.expected-noise, .badge.inconclusive { background: #fff8c5; color: var(--amber); }
.badge.fixed-error, .badge.faster { background: #dafbe1; color: #116329; }
.muted { color: var(--muted); }
.note { color: var(--muted); font-size: 12px; margin: 2px 0 6px; }
details { margin: 8px 0; }
summary { cursor: pointer; font-weight: 600; }
nav { margin: 14px 0; }
nav a { margin-right: 14px; }
svg.plot { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
</style>
</head>
<body>
<header class="verdict {{if .R.Verdict.Regressions}}fail{{else}}pass{{end}}"><div>
<h1>{{if .R.Verdict.Regressions}}✗{{else}}✓{{end}} dbtwin: {{.R.Verdict.Headline}}</h1>
<p>{{plural (len .R.Tenants) "tenant"}} · {{plural .R.Summary.Statements "statement"}} · {{plural .R.Summary.Fingerprints "fingerprint"}}{{with .R.Meta.DbtwinVersion}} · dbtwin {{.}}{{end}}</p>
{{with .R.Verdict.Reasons}}<ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
</div></header>
<main>
<section class="cards">
<div class="card{{if .R.Summary.RegressedFingerprints}} bad{{end}}"><b>{{.R.Summary.RegressedFingerprints}}</b><span>fingerprints regressed</span></div>
<div class="card"><b>{{.R.Summary.Statements}}</b><span>statements compared</span></div>
<div class="card"><b>{{.R.Summary.Fingerprints}}</b><span>fingerprints</span></div>
<div class="card{{if .R.Summary.TablesDiffering}} bad{{end}}"><b>{{.R.Summary.TablesDiffering}}</b><span>tables differ after replay</span></div>
<div class="card{{if .R.Summary.MigrationsFailed}} bad{{end}}"><b>{{.R.Summary.MigrationsFailed}}</b><span>migrations failed</span></div>
<div class="card{{if .R.Summary.LintFailing}} bad{{end}}"><b>{{.R.Summary.LintErrors}} / {{.R.Summary.LintWarnings}}</b><span>lint errors / warnings</span></div>
</section>
{{range .R.Meta.Notes}}<p class="note">{{.}}</p>{{end}}
<table>
<tr><th>Tenant</th><th>Verdict</th><th class="n">Statements</th><th class="n">Fingerprints</th><th class="n">Regressed</th><th class="n">Noise</th><th class="n">Slower</th><th class="n">Tables differ</th><th class="n">Lint E / W</th></tr>
{{range .Tenants}}<tr><td><a href="#{{.ID}}">{{.Name}}</a></td><td>{{if .T.Verdict.Regressions}}<span class="badge fail">{{.T.Verdict.Headline}}</span>{{else}}<span class="badge fixed-error">{{.T.Verdict.Headline}}</span>{{end}}</td><td class="n">{{.T.Summary.Statements}}</td><td class="n">{{.T.Summary.Fingerprints}}</td><td class="n">{{.T.Summary.RegressedFingerprints}}</td><td class="n">{{.Noise}}</td><td class="n">{{.Slower}}</td><td class="n">{{.T.Summary.TablesDiffering}}</td><td class="n">{{.T.Summary.LintErrors}} / {{.T.Summary.LintWarnings}}</td></tr>
{{end}}</table>
<details><summary>Statements by class</summary>
<table><tr><th>Class</th><th class="n">Statements</th><th class="n">Fingerprints</th><th>Fails the run</th></tr>
{{range .R.Summary.Classes}}<tr><td><span class="badge {{if failing .Class}}fail{{else}}{{cls .Class}}{{end}}">{{label .Class}}</span></td><td class="n">{{.Statements}}</td><td class="n">{{.Fingerprints}}</td><td>{{if failing .Class}}yes{{end}}</td></tr>
{{end}}</table>
</details>
{{$named := .Named}}
{{range .Tenants}}{{$t := .T}}
<section id="{{.ID}}">
<h2>{{if $named}}Tenant {{.Name}}{{else}}Comparison{{end}}: {{.T.Verdict.Headline}}</h2>
<p class="muted">Baseline {{.T.Inputs.Baseline.Results}} results, candidate {{.T.Inputs.Candidate.Results}}{{with .T.Inputs.Control}}, control {{.Results}}{{else}}, no control replay{{end}}; statement time {{dur .T.Inputs.Baseline.StatementTime}} → {{dur .T.Inputs.Candidate.StatementTime}}{{with .T.Env.PostgresCandidate}}; PostgreSQL {{.}}{{end}}.{{range .T.Env.Phases}} {{.Name}} {{dur .Duration}}.{{end}}</p>
{{with .T.Verdict.Reasons}}<ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}

{{if .Regs}}<h3>Regressions by fingerprint</h3>
{{range .Regs}}<article class="finding">
<header><span class="badge fail">{{label .F.Class}}</span><code>{{fp .F.Fingerprint}}</code><span class="muted">{{plural .F.Count "statement"}} · example session {{.F.Example.Session}}, seq {{.F.Example.Seq}}{{with .F.Example.Candidate.SQLState}} · SQLSTATE {{.}}{{end}}</span></header>
<pre>{{.F.Example.SQL}}</pre>
<p class="note">Baseline: {{outcome .F.Example.Baseline}} · Candidate: {{outcome .F.Example.Candidate}}{{with .F.Example.Reason}} · {{.}}{{end}}</p>
{{with .F.Example.Diff}}<pre class="diff">{{range .Lines}}<span class="{{opclass .Op}}">{{opmark .Op}}{{.Text}}</span>{{end}}</pre>{{with .Note}}<p class="note">{{.}}</p>{{end}}{{end}}
{{with .Lat}}{{if eq .Class "slower"}}<p class="note">Latency p50 {{dur .Baseline.P50}} → {{dur .Candidate.P50}}, p95 {{dur .Baseline.P95}} → {{dur .Candidate.P95}} ({{ratio .Ratio}}, {{.Baseline.N}} / {{.Candidate.N}} runs).</p>{{end}}{{end}}
<p class="note">{{range $i, $c := .F.Classes}}{{if $i}}, {{end}}{{label $c.Class}} {{$c.Count}}{{end}}</p>
</article>
{{end}}{{if .RegsMore}}<p class="note">{{.RegsMore}} more regressions are in the JSON report.</p>{{end}}
{{else}}<p>No statement regressed.</p>{{end}}

{{if .T.Latency}}<h3>Latency: baseline vs candidate</h3>
<p class="note">{{.T.Policy.LatencyGate}} after a warm-up of {{.T.Policy.WarmUp}} per fingerprint; slower needs ≥ {{printf "%.1f" .T.Policy.LatencyRatio}}× and ≥ {{dur .T.Policy.LatencyFloor}} more. Dots: p95, ticks: p50.</p>
{{.Plot}}
{{if .Slow}}<table><tr><th>Fingerprint</th><th class="n">Baseline p50 / p95</th><th class="n">Candidate p50 / p95</th><th class="n">Ratio</th><th class="n">Runs</th><th>Statement</th></tr>
{{range .Slow}}<tr><td><code>{{fp .L.Fingerprint}}</code></td><td class="n">{{dur .L.Baseline.P50}} / {{dur .L.Baseline.P95}}</td><td class="n">{{dur .L.Candidate.P50}} / {{dur .L.Candidate.P95}}</td><td class="n">{{ratio .L.Ratio}}</td><td class="n">{{.L.Baseline.N}} / {{.L.Candidate.N}}</td><td><code>{{clip .L.SQL 140}}</code></td></tr>
{{end}}</table>
{{range .Slow}}{{if .PlanDiff}}<details open><summary>Plan diff of <code>{{fp .L.Fingerprint}}</code> (baseline → candidate)</summary>
<pre class="diff">{{range .PlanDiff}}<span class="{{opclass .Op}}">{{opmark .Op}}{{.Text}}</span>{{end}}</pre></details>
{{else if .L.NeedsExplain}}<p class="note">Plans of <code>{{fp .L.Fingerprint}}</code> were not captured.</p>{{end}}{{end}}{{end}}{{end}}

{{if .T.FinalState}}<h3>Final state after replay</h3>
<table><tr><th>Table</th><th class="n">Rows baseline</th><th class="n">Rows candidate</th><th class="n">Chunks differing</th><th>Sample keys</th><th>Verdict</th></tr>
{{range .T.FinalState}}<tr><td><code>{{.Table}}</code></td><td class="n">{{.RowsBaseline}}</td><td class="n">{{.RowsCandidate}}</td><td class="n">{{.ChunksDiffering}}</td><td><code>{{clip (join .SampleKeys ", ") 120}}</code></td><td>{{if .AlsoInControl}}<span class="badge noise">noise: control differs too</span>{{else}}<span class="badge fail">differs</span>{{end}}</td></tr>
{{end}}</table>{{end}}

{{if .Migs}}<h3>Migrations ({{plural (len .Migs) "migration"}}, {{.MigsTotal}})</h3>
{{with .T.Migration}}<p class="note">{{with .Format}}{{.}}: {{end}}<code>{{.Source}}</code>{{with .Target}} on {{.}}{{end}}; locks sampled every {{dur .SampleInterval}}. Bars show how long each lock was held; pale bars are on relations created by the migration (they block nobody).</p>{{end}}
{{.Timeline}}
<table><tr><th>Migration</th><th class="n">Duration</th><th>Strongest lock held</th><th>Rewritten</th><th>Status</th></tr>
{{range .Migs}}<tr><td>{{.Label}}{{with .File}}<br><span class="muted">{{.}}</span>{{end}}</td><td class="n">{{dur .Duration}}</td><td>{{.Strongest}}</td><td>{{join .Rewritten ", "}}</td><td>{{if .Error}}<span class="badge fail">failed</span> {{clip .Error 200}}{{else}}ok{{end}}</td></tr>
{{end}}</table>{{end}}

{{if .T.Lint}}<h3>Migration lint</h3>
<table><tr><th>Rule</th><th>Severity</th><th>Where</th><th>Problem</th><th>Safe way</th></tr>
{{range .T.Lint}}<tr><td><code>{{.Rule}}</code> {{.Name}}</td><td>{{if lintfails $t (printf "%s" .Severity)}}<span class="badge fail">{{.Severity}}</span>{{else}}<span class="badge">{{.Severity}}</span>{{end}}</td><td><code>{{.File}}:{{.Line}}</code></td><td>{{.Message}}<br><code>{{.Statement}}</code>{{with .Lock}}<br><span class="muted">lock: {{.}}</span>{{end}}{{range .Queries}}<br><span class="muted">breaks <code>{{fp .Fingerprint}}</code> ×{{.Count}}: <code>{{.SQL}}</code> ({{.Uses}})</span>{{end}}</td><td>{{.Fix}}</td></tr>
{{end}}</table>{{end}}

{{if .Others}}<details><summary>Differences that are not regressions ({{plural (len .Others) "fingerprint"}})</summary>
<table><tr><th>Class</th><th>Fingerprint</th><th class="n">Statements</th><th>Why</th><th>Statement</th></tr>
{{range .Others}}<tr><td><span class="badge {{cls .F.Class}}">{{label .F.Class}}</span></td><td><code>{{fp .F.Fingerprint}}</code></td><td class="n">{{.F.Count}}</td><td>{{.Why}}</td><td><code>{{clip .F.Example.SQL 140}}</code></td></tr>
{{end}}</table></details>{{end}}
</section>
{{end}}
<footer>dbtwin report schema {{.R.Version}}. Values come from masked clones; statements are shown normalized.</footer>
</main>
</body>
</html>
`
