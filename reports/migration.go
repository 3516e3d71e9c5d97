package reports

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/migrate"
)

// migView is one migration laid out on the run's timeline.
type migView struct {
	Label     string // "0003 rename_email"
	File      string
	Start     time.Duration
	Duration  time.Duration
	Error     string
	Strongest string // "ACCESS EXCLUSIVE on users, held 1.2s"
	Rewritten []string
	Locks     []lockSpan
}

// lockSpan is one lock held during a migration, on the timeline.
type lockSpan struct {
	Relation  string
	Migration string
	Mode      migrate.LockMode
	Start     time.Duration
	Held      time.Duration
	Created   bool
	SQL       string
	Line      int
}

// migrationViews lays the migrations end to end: statements start one
// after another inside their migration (the report counts execution time
// only), each lock spans from its statement's start for as long as it was
// held.
func migrationViews(rep *migrate.Report) ([]migView, time.Duration) {
	if rep == nil {
		return nil, 0
	}
	var out []migView
	var at time.Duration
	for _, m := range rep.Migrations {
		v := migView{Label: strings.TrimSpace(m.Version + " " + m.Name), File: m.File, Start: at, Duration: m.Duration, Error: m.Error}
		var stmtAt, stmtSum time.Duration
		var best *lockSpan
		for _, s := range m.Statements {
			for _, l := range s.Locks {
				span := lockSpan{Relation: l.Relation, Migration: v.Label, Mode: l.Mode, Start: at + stmtAt, Held: l.Held, Created: l.Created, SQL: s.SQL, Line: s.Line}
				v.Locks = append(v.Locks, span)
				if !l.Created && (best == nil || l.Mode.Rank() > best.Mode.Rank() || (l.Mode.Rank() == best.Mode.Rank() && l.Held > best.Held)) {
					b := span
					best = &b
				}
			}
			v.Rewritten = append(v.Rewritten, s.Rewritten...)
			stmtAt += s.Duration
			stmtSum += s.Duration
		}
		if best != nil {
			v.Strongest = fmt.Sprintf("%s on %s, held %s", best.Mode, best.Relation, fmtDur(best.Held))
		}
		if v.Duration < stmtSum {
			v.Duration = stmtSum
		}
		sort.Strings(v.Rewritten)
		v.Rewritten = dedup(v.Rewritten)
		at += v.Duration
		out = append(out, v)
	}
	return out, at
}

// fmtDur prints a duration compactly and stably: "850µs", "12.3ms", "1.25s".
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < 100*time.Millisecond:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)), ".0") + "ms"
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
	case d < time.Minute:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", d.Seconds()), "0"), ".") + "s"
	}
	return d.Round(time.Second).String()
}

// fmtRatio prints a latency ratio ("3.2×").
func fmtRatio(r float64) string {
	return fmt.Sprintf("%.1f×", r)
}
