package replay

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dbtwin/dbtwin/sqlinfo"
)

// Summary describes a workload that Convert read: what it holds and what
// was left out.
type Summary struct {
	// Source, Format and Prefix describe the input (see ReaderStats).
	Source string `json:"source"`
	Format Format `json:"format"`
	Prefix string `json:"log_line_prefix,omitempty"`
	// Lines is how many input lines were read.
	Lines int64 `json:"lines"`
	// Events is how many events were written; Sessions how many distinct
	// sessions they belong to.
	Events   int64 `json:"events"`
	Sessions int64 `json:"sessions"`
	// Statements counts statement events, Failed those that failed when
	// captured, Connects and Disconnects the session events.
	Statements  int64 `json:"statements"`
	Failed      int64 `json:"failed"`
	Connects    int64 `json:"connects"`
	Disconnects int64 `json:"disconnects"`
	// Fingerprints is how many distinct statement fingerprints (package
	// sqlinfo) the statements have; Unparsable counts statements the
	// parser rejected (they have no fingerprint).
	Fingerprints int64 `json:"fingerprints"`
	Unparsable   int64 `json:"unparsable"`
	// First and Last are the earliest and latest event times.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Skipped counts input records left out, by reason.
	Skipped map[string]int64 `json:"skipped,omitempty"`
	// WarningCount counts malformed or unusable lines; Warnings holds the
	// first of them.
	WarningCount int64     `json:"warning_count"`
	Warnings     []Warning `json:"warnings,omitempty"`
}

// String renders the summary as a short text block for a terminal:
//
//	workload  postgresql.log (stderr, log_line_prefix "%m [%p] ")
//	lines     1234
//	sessions  3
//	…
func (s Summary) String() string {
	var b strings.Builder
	in := fmt.Sprintf("%s (%s", s.Source, s.Format)
	if s.Prefix != "" {
		in += fmt.Sprintf(", log_line_prefix %q", s.Prefix)
	}
	fmt.Fprintf(&b, "workload      %s)\n", in)
	fmt.Fprintf(&b, "lines         %d\n", s.Lines)
	fmt.Fprintf(&b, "sessions      %d (%d connects, %d disconnects)\n", s.Sessions, s.Connects, s.Disconnects)
	fmt.Fprintf(&b, "statements    %d (%d failed when captured)\n", s.Statements, s.Failed)
	fmt.Fprintf(&b, "fingerprints  %d distinct (%d statements do not parse)\n", s.Fingerprints, s.Unparsable)
	if !s.First.IsZero() {
		fmt.Fprintf(&b, "time span     %s → %s (%s)\n", s.First.Format(time.RFC3339Nano), s.Last.Format(time.RFC3339Nano), s.Last.Sub(s.First))
	}
	if len(s.Skipped) > 0 {
		b.WriteString("skipped\n")
		for _, r := range sortedReasons(s.Skipped) {
			fmt.Fprintf(&b, "  %8d  %s\n", s.Skipped[r], r)
		}
	}
	fmt.Fprintf(&b, "warnings      %d\n", s.WarningCount)
	for _, w := range s.Warnings {
		fmt.Fprintf(&b, "  %s\n", w)
	}
	if n := s.WarningCount - int64(len(s.Warnings)); n > 0 {
		fmt.Fprintf(&b, "  … and %d more\n", n)
	}
	return b.String()
}

// summaryWarnings is how many warnings a Summary keeps in detail.
const summaryWarnings = 10

// Convert reads every event of r and writes it to w as a JSONL workload
// (see WorkloadWriter), and returns a summary of it. It stops with ctx's
// error when ctx is cancelled. On error, w holds a valid prefix of the
// workload (up to the last complete line written); callers that must not
// leave partial files write to a temporary file and rename it.
func Convert(ctx context.Context, r Reader, w io.Writer) (Summary, error) {
	st := r.Stats()
	ww, err := NewWorkloadWriter(w, WorkloadHeader{Source: st.Name, Format: st.Format, Prefix: st.Prefix})
	if err != nil {
		return Summary{}, err
	}
	acc := newSummarizer()
	for r.Next() {
		ev := r.Event()
		acc.add(ev)
		if err := ww.Write(ev); err != nil {
			return acc.summary(r.Stats()), err
		}
		if acc.sum.Events&1023 == 0 {
			if err := ctx.Err(); err != nil {
				_ = ww.Flush()
				return acc.summary(r.Stats()), fmt.Errorf("convert %s: %w", st.Name, err)
			}
		}
	}
	sum := acc.summary(r.Stats())
	if err := r.Err(); err != nil {
		_ = ww.Flush()
		return sum, fmt.Errorf("convert %s: %w", st.Name, err)
	}
	if err := ww.Flush(); err != nil {
		return sum, err
	}
	return sum, nil
}

// summarizer accumulates a Summary. Its memory grows with the number of
// sessions and distinct fingerprints, never with the number of events.
type summarizer struct {
	sum          Summary
	sessions     map[string]struct{}
	fingerprints map[string]struct{}
	memo         map[string]string // SQL text → fingerprint ("" unparsable)
}

// memoSize bounds the SQL → fingerprint memo; it is cleared when full.
const memoSize = 4096

func newSummarizer() *summarizer {
	return &summarizer{sessions: map[string]struct{}{}, fingerprints: map[string]struct{}{}, memo: map[string]string{}}
}

func (a *summarizer) add(ev Event) {
	s := &a.sum
	s.Events++
	a.sessions[ev.Session] = struct{}{}
	if !ev.Time.IsZero() {
		if s.First.IsZero() || ev.Time.Before(s.First) {
			s.First = ev.Time
		}
		if ev.Time.After(s.Last) {
			s.Last = ev.Time
		}
	}
	switch ev.Kind {
	case KindConnect:
		s.Connects++
	case KindDisconnect:
		s.Disconnects++
	case KindStatement:
		s.Statements++
		if ev.Error != nil {
			s.Failed++
		}
		fp, ok := a.memo[ev.SQL]
		if !ok {
			fp, _ = sqlinfo.Fingerprint(ev.SQL)
			if len(a.memo) >= memoSize {
				clear(a.memo)
			}
			a.memo[ev.SQL] = fp
		}
		if fp == "" {
			s.Unparsable++
		} else {
			a.fingerprints[fp] = struct{}{}
		}
	}
}

func (a *summarizer) summary(st ReaderStats) Summary {
	s := a.sum
	s.Source, s.Format, s.Prefix, s.Lines = st.Name, st.Format, st.Prefix, st.Lines
	s.Sessions = int64(len(a.sessions))
	s.Fingerprints = int64(len(a.fingerprints))
	s.Skipped = st.Skipped
	s.WarningCount = st.WarningCount
	s.Warnings = st.Warnings
	if len(s.Warnings) > summaryWarnings {
		s.Warnings = s.Warnings[:summaryWarnings]
	}
	return s
}
