package reports

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/compare"
)

// esc escapes text for SVG/HTML content and attributes.
func esc(s string) string { return html.EscapeString(s) }

// latencyPlot draws p95 (dots) and p50 (ticks) of each fingerprint on a
// log-scale axis, baseline and candidate joined by a line: slower
// fingerprints first, then the slowest candidates. At most maxRows rows.
func latencyPlot(rows []compare.LatencyRow, maxRows int) template.HTML {
	if len(rows) == 0 {
		return ""
	}
	var pick []compare.LatencyRow
	for _, r := range rows {
		if r.Class == compare.Slower {
			pick = append(pick, r)
		}
	}
	var rest []compare.LatencyRow
	for _, r := range rows {
		if r.Class != compare.Slower {
			rest = append(rest, r)
		}
	}
	sortByCandidateP95(rest)
	pick = append(pick, rest...)
	if len(pick) > maxRows {
		pick = pick[:maxRows]
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range pick {
		for _, d := range []time.Duration{r.Baseline.P50, r.Baseline.P95, r.Candidate.P50, r.Candidate.P95} {
			v := math.Max(float64(d), float64(time.Microsecond))
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	dLo, dHi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dHi <= dLo {
		dHi = dLo + 1
	}
	const width, labelW, pad, right, top, rowH = 1000, 330, 14, 40, 46, 24
	plotW := float64(width - labelW - pad - right)
	x := func(d time.Duration) float64 {
		v := math.Max(float64(d), float64(time.Microsecond))
		return float64(labelW+pad) + (math.Log10(v)-dLo)/(dHi-dLo)*plotW
	}
	height := top + rowH*len(pick) + 34
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" role="img" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">`, width, height, width, height)
	b.WriteString(`<title>Latency p95 per fingerprint, baseline vs candidate (log scale)</title>`)
	// Legend.
	fmt.Fprintf(&b, `<circle cx="%d" cy="14" r="5" fill="#2f6fdb"/><text x="%d" y="18">baseline p95</text>`, labelW, labelW+10)
	fmt.Fprintf(&b, `<circle cx="%d" cy="14" r="5" fill="#d73a49"/><text x="%d" y="18">candidate p95 (slower)</text>`, labelW+110, labelW+120)
	fmt.Fprintf(&b, `<circle cx="%d" cy="14" r="5" fill="#8a63d2"/><text x="%d" y="18">candidate p95</text>`, labelW+280, labelW+290)
	fmt.Fprintf(&b, `<line x1="%d" y1="8" x2="%d" y2="20" stroke="#555" stroke-width="2"/><text x="%d" y="18">p50</text>`, labelW+400, labelW+400, labelW+408)
	// Decade grid.
	for d := dLo; d <= dHi; d++ {
		gx := float64(labelW+pad) + (d-dLo)/(dHi-dLo)*plotW
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e6ea"/>`, gx, top-8, gx, height-28)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#57606a">%s</text>`, gx, height-12, esc(fmtDur(time.Duration(math.Pow(10, d)))))
	}
	for i, r := range pick {
		y := top + rowH*i + rowH/2
		if i%2 == 0 {
			fmt.Fprintf(&b, `<rect x="0" y="%d" width="%d" height="%d" fill="#f6f8fa"/>`, y-rowH/2, width, rowH)
		}
		color := "#8a63d2"
		switch r.Class {
		case compare.Slower:
			color = "#d73a49"
		case compare.Faster:
			color = "#2da44e"
		}
		label := shortFP(r.Fingerprint) + "  " + clip(r.SQL, 42)
		fmt.Fprintf(&b, `<g><title>%s&#10;baseline p50 %s p95 %s (n=%d)&#10;candidate p50 %s p95 %s (n=%d)&#10;ratio %s: %s</title>`,
			esc(clip(r.SQL, 200)), fmtDur(r.Baseline.P50), fmtDur(r.Baseline.P95), r.Baseline.N,
			fmtDur(r.Candidate.P50), fmtDur(r.Candidate.P95), r.Candidate.N, fmtRatio(r.Ratio), esc(r.Class.Label()))
		fmt.Fprintf(&b, `<text x="6" y="%d" font-family="ui-monospace, monospace" font-size="11">%s</text>`, y+4, esc(label))
		bx, cx := x(r.Baseline.P95), x(r.Candidate.P95)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2" stroke-opacity="0.5"/>`, bx, y, cx, y, color)
		for _, p := range []struct {
			d     time.Duration
			color string
		}{{r.Baseline.P50, "#2f6fdb"}, {r.Candidate.P50, color}} {
			px := x(p.d)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"/>`, px, y-6, px, y+6, p.color)
		}
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%d" r="5" fill="#2f6fdb"/>`, bx, y)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%d" r="5" fill="%s"/>`, cx, y, color)
		if r.Class == compare.Slower {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#d73a49" font-weight="600">%s</text>`, math.Max(bx, cx)+9, y+4, esc(fmtRatio(r.Ratio)))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text above went through esc
}

func sortByCandidateP95(rows []compare.LatencyRow) {
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Candidate.P95 != rows[j].Candidate.P95 {
			return rows[i].Candidate.P95 > rows[j].Candidate.P95
		}
		return rows[i].Fingerprint < rows[j].Fingerprint
	})
}

// lockColor colors a lock mode by how much it blocks.
func lockColor(rank int) string {
	switch {
	case rank >= 8:
		return "#d73a49" // ACCESS EXCLUSIVE: blocks everything
	case rank >= 5:
		return "#f08c00" // SHARE …, EXCLUSIVE: blocks writes
	case rank == 4:
		return "#e3b341" // SHARE UPDATE EXCLUSIVE
	}
	return "#8c959f" // row-level-ish modes
}

// migrationTimeline draws the migrations end to end and, per relation,
// the locks held on it, colored by mode.
func migrationTimeline(views []migView, total time.Duration) template.HTML {
	if len(views) == 0 || total <= 0 {
		return ""
	}
	var rels []string
	seen := map[string]bool{}
	for _, m := range views {
		for _, l := range m.Locks {
			if !seen[l.Relation] {
				seen[l.Relation] = true
				rels = append(rels, l.Relation)
			}
		}
	}
	const width, labelW, right, top, rowH = 1000, 200, 40, 40, 22
	plotW := float64(width - labelW - right)
	x := func(d time.Duration) float64 { return float64(labelW) + float64(d)/float64(total)*plotW }
	w := func(d time.Duration) float64 { return math.Max(2, float64(d)/float64(total)*plotW) }
	height := top + rowH*(len(rels)+1) + 62
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="plot" role="img" viewBox="0 0 %d %d" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="12">`, width, height, width, height)
	b.WriteString(`<title>Migration timeline with the locks each relation was held under</title>`)
	legend := []struct {
		rank int
		name string
	}{{8, "ACCESS EXCLUSIVE (blocks reads and writes)"}, {5, "SHARE … EXCLUSIVE (blocks writes)"}, {4, "SHARE UPDATE EXCLUSIVE"}, {3, "weaker"}}
	lx := 6
	for _, l := range legend {
		fmt.Fprintf(&b, `<rect x="%d" y="8" width="12" height="12" fill="%s"/><text x="%d" y="18">%s</text>`, lx, lockColor(l.rank), lx+16, esc(l.name))
		lx += 30 + int(7.2*float64(len(l.name)))
	}
	// Time ticks.
	step := niceStep(total)
	for t := time.Duration(0); t <= total; t += step {
		tx := x(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e6ea"/>`, tx, top-4, tx, height-40)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#57606a">%s</text>`, tx, height-26, esc(fmtDur(t)))
	}
	// Migrations row.
	y := top
	fmt.Fprintf(&b, `<text x="6" y="%d" font-weight="600">migrations</text>`, y+15)
	for i, m := range views {
		fill := []string{"#c8d9f5", "#dfe8f7"}[i%2]
		if m.Error != "" {
			fill = "#f5c2c7"
		}
		fmt.Fprintf(&b, `<g><title>%s: %s%s</title><rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" stroke="#fff"/>`,
			esc(m.Label), esc(fmtDur(m.Duration)), esc(errSuffix(m.Error)), x(m.Start), y+2, w(m.Duration), rowH-4, fill)
		if w(m.Duration) > 40 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11">%s</text>`, x(m.Start)+4, y+15, esc(clip(m.Label, int(w(m.Duration)/7))))
		}
		b.WriteString(`</g>`)
	}
	for i, rel := range rels {
		y := top + rowH*(i+1)
		if i%2 == 0 {
			fmt.Fprintf(&b, `<rect x="0" y="%d" width="%d" height="%d" fill="#f6f8fa"/>`, y, width, rowH)
		}
		fmt.Fprintf(&b, `<text x="6" y="%d" font-family="ui-monospace, monospace" font-size="11">%s</text>`, y+15, esc(clip(rel, 26)))
		var spans []lockSpan
		for _, m := range views {
			for _, l := range m.Locks {
				if l.Relation == rel {
					spans = append(spans, l)
				}
			}
		}
		// Stronger locks are drawn last, on top of weaker ones.
		sort.SliceStable(spans, func(i, j int) bool { return spans[i].Mode.Rank() < spans[j].Mode.Rank() })
		for _, l := range spans {
			opacity := "1"
			note := ""
			if l.Created {
				opacity, note = "0.35", " (created in this run: blocks nobody)"
			}
			fmt.Fprintf(&b, `<g><title>%s on %s held %s%s&#10;%s:%d %s</title><rect x="%.1f" y="%d" width="%.1f" height="%d" rx="2" fill="%s" fill-opacity="%s"/>`,
				esc(string(l.Mode)), esc(rel), esc(fmtDur(l.Held)), esc(note), esc(l.Migration), l.Line, esc(clip(l.SQL, 120)),
				x(l.Start), y+4, w(l.Held), rowH-8, lockColor(l.Mode.Rank()), opacity)
			if w(l.Held) > 60 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10" fill="#fff">%s</text>`, x(l.Start)+3, y+15, esc(clip(string(l.Mode), int(w(l.Held)/6))))
			}
			b.WriteString(`</g>`)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text above went through esc
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " — failed: " + clip(e, 200)
}

// niceStep picks a tick step giving 4–10 ticks over total.
func niceStep(total time.Duration) time.Duration {
	for _, s := range []time.Duration{
		time.Microsecond, 2 * time.Microsecond, 5 * time.Microsecond, 10 * time.Microsecond, 20 * time.Microsecond, 50 * time.Microsecond,
		100 * time.Microsecond, 200 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
		10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
		10 * time.Minute, 30 * time.Minute, time.Hour,
	} {
		if total/s <= 10 {
			return s
		}
	}
	return total / 10
}
