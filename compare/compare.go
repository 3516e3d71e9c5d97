package compare

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/dbtwin/dbtwin/replay"
	"github.com/dbtwin/dbtwin/sqlinfo"
)

// Option adjusts a Compare call.
type Option func(*options) error

type options struct {
	tenant  string
	version string
	stats   *Stats
}

// WithTenant names the tenant the results belong to.
func WithTenant(name string) Option {
	return func(o *options) error {
		o.tenant = name
		return nil
	}
}

// WithDbtwinVersion records the dbtwin version in the report's Meta.
func WithDbtwinVersion(v string) Option {
	return func(o *options) error {
		o.version = v
		return nil
	}
}

// WithStats makes Compare fill *s with its counters (results read, pairs,
// the most statements waiting for their pair at once).
func WithStats(s *Stats) Option {
	return func(o *options) error {
		if s == nil {
			return fmt.Errorf("with stats: nil *Stats")
		}
		o.stats = s
		return nil
	}
}

// Compare reads the baseline and candidate results files (and the control
// one, when control is not nil) at the same time, pairs their results by
// (Session, Seq), classifies every statement and returns a single-tenant
// report.
//
// Results files are written in completion order, not Seq order. Compare
// streams all of them at once and keeps only the results still waiting
// for their other side(s): memory is bounded by cfg.PairWindow (see
// there) and by the number of distinct fingerprints, never by file size.
// A file more out of order than PairWindow is an error, never a silent
// mismatch.
//
// cfg must validate (start from DefaultConfig). Compare never touches a
// database and reads no clock: the same inputs give the same report.
func Compare(ctx context.Context, baseline, candidate, control io.Reader, cfg Config, opts ...Option) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
	}
	if o.stats == nil {
		o.stats = &Stats{}
	}
	*o.stats = Stats{}
	c := &comparer{cfg: cfg, fps: map[string]*fpAgg{}, fpCache: map[string]string{}}
	ins := []io.Reader{baseline, candidate, control}
	var readers []*replay.ResultsReader
	var sides []int
	for side, in := range ins {
		if in == nil {
			if side == sideControl {
				continue
			}
			return nil, fmt.Errorf("compare: no %s results", sideNames[side])
		}
		rr, err := replay.NewResultsReader(in)
		if err != nil {
			return nil, fmt.Errorf("compare: %s: %w", sideNames[side], err)
		}
		h := rr.Header()
		c.inputs[side].Mode = string(h.Mode)
		c.inputs[side].SampleRows = h.SampleRows
		readers = append(readers, rr)
		sides = append(sides, side)
	}
	c.hasControl = len(readers) == 3
	p := newPairer(readers, sides, cfg.PairWindow, o.stats, c.add)
	if err := p.run(ctx); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	rep := &Report{Version: SchemaVersion, Meta: Meta{DbtwinVersion: o.version}, Tenants: []TenantReport{c.tenant(o.tenant)}}
	rep.Recompute()
	return rep, nil
}

// comparer accumulates the classification of paired statements.
type comparer struct {
	cfg        Config
	fps        map[string]*fpAgg
	fpCache    map[string]string // SQL → fingerprint, for results without one
	inputs     [3]SideInput
	hasControl bool
	pairs      int
	// started records, per side, the sessions whose first statement has
	// been seen (one entry per session, not per statement).
	started [3]map[string]bool
}

// fpAgg is everything kept per fingerprint: counters, one example and
// three latency sketches (bounded; see sketch).
type fpAgg struct {
	fp     string
	facts  facts
	counts map[Class]int
	count  int
	worst  Class
	hasEx  bool
	exKey  pairKey
	ex     Example
	exSQL  string // raw text of the example, normalized at the end
	warm   [3]int
	lat    [3]sketch
}

// facts are what sqlinfo says about a fingerprint's statements (the same
// for every statement of a fingerprint: constants do not change them).
type facts struct {
	ordered      bool
	volatile     []string
	limitNoOrder bool
}

// add classifies one paired statement.
func (c *comparer) add(key pairKey, res [3]*replay.Result) error {
	for side, r := range res {
		if r == nil {
			continue
		}
		in := &c.inputs[side]
		in.Results++
		in.StatementTime += r.Duration
		if failed(r) {
			in.Errors++
		}
	}
	b, x, k := res[sideBaseline], res[sideCandidate], res[sideControl]
	ref := b
	if ref == nil {
		ref = x
	}
	if ref == nil { // only the control has it: nothing to compare
		return nil
	}
	c.pairs++
	agg := c.agg(ref)

	class, underlying, reason := Same, Class(""), ""
	var rx relax
	switch {
	case b == nil:
		class = MissingInBaseline
	case x == nil:
		class = MissingInCandidate
	default:
		if len(c.cfg.Rules) > 0 || c.cfg.FloatTolerance > 0 {
			rx = c.cfg.relaxFor(agg.fp, b.SQL)
		}
		raw := diffPair(b, x, agg.facts.ordered, &rx)
		class = raw
		if raw != Same && raw != Skipped {
			class, underlying = raw, raw
			ctrl := Same
			if k != nil {
				ctrl = diffPair(b, k, agg.facts.ordered, &rx)
			}
			switch {
			case rx.ignore:
				class, reason = Ignored, "ignored by a compare rule"
				if rx.ignoreReason != "" {
					reason += ": " + rx.ignoreReason
				}
			case k != nil && noiseExplains(raw, ctrl, x, k):
				class = Noise
				reason = "baseline and control differ too (" + ctrl.Label() + "): non-deterministic"
			case (raw.isData() && raw != DifferentColumns) && (len(agg.facts.volatile) > 0 || agg.facts.limitNoOrder):
				class = ExpectedNoise
				reason = agg.facts.noiseReason()
			case raw == Inconclusive:
				underlying = DifferentRows
				reason = "hashes differ; tolerance or ignore rules apply but the result is larger than the kept sample"
			default:
				underlying = ""
			}
		}
	}
	agg.counts[class]++
	agg.count++
	if !agg.hasEx || class.Rank() > agg.worst.Rank() || (class == agg.worst && keyLess(key, agg.exKey)) {
		diffClass := class
		if underlying != "" {
			diffClass = underlying
		}
		agg.hasEx, agg.exKey, agg.worst = true, key, class
		agg.exSQL = ref.SQL
		agg.ex = Example{
			Session: key.session, Seq: key.seq, Class: class, Underlying: underlying, Reason: reason,
			Baseline: outcomeOf(b), Candidate: outcomeOf(x),
			Diff: buildDiff(b, x, diffClass, agg.facts.ordered, &rx, c.cfg.DiffLines),
		}
	}
	for side, r := range res {
		if r == nil || !isOK(r) {
			continue
		}
		// A session's first statement runs on a fresh connection and pays
		// for loading the catalog caches, tens of milliseconds that say
		// nothing about the statement: it is left out of latency, like the
		// warm-up. (A session's results arrive in Seq order: it runs one
		// statement at a time.)
		if c.started[side] == nil {
			c.started[side] = map[string]bool{}
		}
		if !c.started[side][key.session] {
			c.started[side][key.session] = true
			if !c.cfg.Latency.CountSessionStart {
				continue
			}
		}
		agg.warm[side]++
		if agg.warm[side] > c.cfg.Latency.WarmUp {
			agg.lat[side].add(r.Duration)
		}
	}
	return nil
}

func (f facts) noiseReason() string {
	var parts []string
	if len(f.volatile) > 0 {
		parts = append(parts, "volatile: "+strings.Join(f.volatile, ", "))
	}
	if f.limitNoOrder {
		parts = append(parts, "LIMIT without ORDER BY")
	}
	return "non-deterministic statement (" + strings.Join(parts, "; ") + ")"
}

func keyLess(a, b pairKey) bool {
	if a.seq != b.seq {
		return a.seq < b.seq
	}
	return a.session < b.session
}

// agg returns the fingerprint aggregate of a statement, analysing the
// statement the first time its fingerprint is seen.
func (c *comparer) agg(r *replay.Result) *fpAgg {
	fp := c.fingerprint(r)
	if a := c.fps[fp]; a != nil {
		return a
	}
	a := &fpAgg{fp: fp, counts: map[Class]int{}}
	if info, err := sqlinfo.Analyze(r.SQL); err == nil {
		a.facts = facts{ordered: info.HasOrderBy, volatile: info.Volatile, limitNoOrder: info.LimitWithoutOrder}
	}
	c.fps[fp] = a
	return a
}

// fingerprint is the result's fingerprint, or pg_query's when replay did
// not record one, or a hash of the text when it does not parse.
func (c *comparer) fingerprint(r *replay.Result) string {
	if r.Fingerprint != "" {
		return r.Fingerprint
	}
	if fp, ok := c.fpCache[r.SQL]; ok {
		return fp
	}
	fp, err := sqlinfo.Fingerprint(r.SQL)
	if err != nil || fp == "" {
		sum := sha256.Sum256([]byte(r.SQL))
		fp = "sql:" + hex.EncodeToString(sum[:8])
	}
	if len(c.fpCache) >= 4096 {
		clear(c.fpCache)
	}
	c.fpCache[r.SQL] = fp
	return fp
}

// tenant builds the tenant report from the aggregates.
func (c *comparer) tenant(name string) TenantReport {
	cfg := &c.cfg
	t := TenantReport{
		Tenant: name,
		Policy: Policy{
			LatencyRatio: cfg.Latency.Ratio, LatencyFloor: cfg.Latency.Floor, LatencyGate: cfg.Latency.Gate,
			WarmUp: cfg.Latency.WarmUp, FloatTolerance: cfg.FloatTolerance,
			FailInconclusive: cfg.FailInconclusive, FailOnLint: lintLevel(cfg.FailOnLint),
		},
		Inputs:   Inputs{Baseline: c.inputs[sideBaseline], Candidate: c.inputs[sideCandidate], Pairs: c.pairs},
		Findings: []Finding{},
		Latency:  []LatencyRow{},
	}
	if c.hasControl {
		ctrl := c.inputs[sideControl]
		t.Inputs.Control = &ctrl
	}
	for _, a := range c.fps {
		sql := displaySQL(a.exSQL, cfg.SQLChars)
		f := Finding{Fingerprint: a.fp, Count: a.count, Class: a.worst, Example: a.ex}
		f.Example.SQL = sql
		for _, cl := range classOrder {
			if n := a.counts[cl]; n > 0 {
				f.Classes = append(f.Classes, StatementCount{Class: cl, Count: n})
			}
		}
		f.Regression = a.worst.IsRegression() || (a.worst == Inconclusive && cfg.FailInconclusive)
		qb, qc := a.lat[sideBaseline].quantiles(), a.lat[sideCandidate].quantiles()
		if qb.N > 0 && qc.N > 0 {
			row := LatencyRow{Fingerprint: a.fp, SQL: sql, Baseline: qb, Candidate: qc, ExplainSQL: a.exSQL}
			if c.hasControl && a.lat[sideControl].n > 0 {
				q := a.lat[sideControl].quantiles()
				row.Control = &q
			}
			var ratio float64
			row.Class, ratio = judgeLatency(&cfg.Latency, qb, qc, row.Control)
			row.Ratio = math.Round(ratio*1000) / 1000
			switch row.Class {
			case Slower:
				f.Regression = true
				f.Class = worse(f.Class, Slower)
			case Faster, Noise:
				f.Class = worse(f.Class, row.Class)
			}
			t.Latency = append(t.Latency, row)
		}
		t.Findings = append(t.Findings, f)
	}
	sort.Slice(t.Findings, func(i, j int) bool {
		a, b := t.Findings[i], t.Findings[j]
		if a.Regression != b.Regression {
			return a.Regression
		}
		if a.Class != b.Class {
			return a.Class.Rank() > b.Class.Rank()
		}
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Fingerprint < b.Fingerprint
	})
	sort.Slice(t.Latency, func(i, j int) bool {
		a, b := t.Latency[i], t.Latency[j]
		if a.Class != b.Class {
			return a.Class.Rank() > b.Class.Rank()
		}
		if a.Ratio != b.Ratio {
			return a.Ratio > b.Ratio
		}
		return a.Fingerprint < b.Fingerprint
	})
	explained := 0
	for i := range t.Latency {
		if t.Latency[i].Class == Slower && explained < cfg.Latency.ExplainMax {
			t.Latency[i].NeedsExplain = true
			explained++
		}
	}
	return t
}

// displaySQL normalizes a statement (constants → $n: captured text comes
// from production and may hold unmasked literals), puts it on one line
// and cuts it to n characters. Text that does not parse has its literals
// scrubbed lexically instead.
func displaySQL(sql string, n int) string {
	norm, err := sqlinfo.Normalize(sql)
	if err != nil {
		return clip(oneLine(ScrubLiterals(stripComments(sql))), n)
	}
	return clip(oneLine(stripComments(norm)), n)
}

// stripComments removes -- and /* */ comments (they may carry
// application tags with user data), leaving quoted identifiers alone. It
// runs on normalized text, where no string constant is left.
func stripComments(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case s[i] == '"':
			j := i + 1
			for j < len(s) {
				if s[j] == '"' {
					if j+1 < len(s) && s[j+1] == '"' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(s))
			b.WriteString(s[i:j])
			i = j
		case strings.HasPrefix(s[i:], "--"):
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				i = len(s)
			} else {
				i += j
			}
			b.WriteByte(' ')
		case strings.HasPrefix(s[i:], "/*"):
			depth, j := 1, i+2
			for j < len(s) && depth > 0 {
				switch {
				case strings.HasPrefix(s[j:], "/*"):
					depth++
					j += 2
				case strings.HasPrefix(s[j:], "*/"):
					depth--
					j += 2
				default:
					j++
				}
			}
			i = j
			b.WriteByte(' ')
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}
