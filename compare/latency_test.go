package compare

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/replay"
)

func TestLatency(t *testing.T) {
	const sql = "SELECT id, v FROM t WHERE id = 1"
	ms := time.Millisecond
	series := func(n int, first, rest time.Duration) []time.Duration {
		out := []time.Duration{first}
		for range n - 1 {
			out = append(out, rest)
		}
		return out
	}
	tests := []struct {
		name        string
		warmUp      int
		minSamples  int
		gate        string
		base, cand  []time.Duration
		ctrl        []time.Duration
		want        Class
		wantExplain bool
	}{
		{name: "3x slower past floor", base: series(10, 10*ms, 10*ms), cand: series(10, 30*ms, 30*ms), want: Slower, wantExplain: true},
		{name: "3x slower under floor", base: series(10, ms, ms), cand: series(10, 3*ms, 3*ms), want: Same},
		{name: "past floor, under ratio", base: series(10, 10*ms, 10*ms), cand: series(10, 18*ms, 18*ms), want: Same},
		{name: "exactly 2x and floor", base: series(10, 5*ms, 5*ms), cand: series(10, 10*ms, 10*ms), want: Slower, wantExplain: true},
		{name: "faster", base: series(10, 30*ms, 30*ms), cand: series(10, 10*ms, 10*ms), want: Faster},
		{name: "cold first run left out by warm-up", warmUp: 1, base: series(10, 500*ms, 10*ms), cand: series(10, 10*ms, 10*ms), want: Same},
		{name: "cold first run counted without warm-up", warmUp: 0, gate: "p95", base: series(10, 500*ms, 10*ms), cand: series(10, 10*ms, 10*ms), want: Faster},
		{name: "cold candidate run left out by warm-up", warmUp: 1, base: series(10, 10*ms, 10*ms), cand: series(10, 900*ms, 10*ms), want: Same},
		{name: "control slower too: noise", base: series(10, 10*ms, 10*ms), cand: series(10, 30*ms, 30*ms), ctrl: series(10, 30*ms, 30*ms), want: Noise},
		{name: "control not slower: slower", base: series(10, 10*ms, 10*ms), cand: series(10, 30*ms, 30*ms), ctrl: series(10, 11*ms, 11*ms), want: Slower, wantExplain: true},
		{name: "too few samples", minSamples: 5, base: series(3, 10*ms, 10*ms), cand: series(3, 90*ms, 90*ms), want: Skipped},
		{name: "one stall is not a regression under the default gate", base: series(10, 10*ms, 10*ms), cand: append(series(9, 10*ms, 10*ms), 400*ms), want: Same},
		{name: "p95 gate sees the tail", gate: "p95", base: series(20, 10*ms, 10*ms), cand: append(series(17, 10*ms, 10*ms), 90*ms, 90*ms, 90*ms), want: Slower, wantExplain: true},
		{name: "p50 gate ignores the tail", gate: "p50", base: series(20, 10*ms, 10*ms), cand: append(series(17, 10*ms, 10*ms), 90*ms, 90*ms, 90*ms), want: Same},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Latency.WarmUp = tt.warmUp
			cfg.Latency.CountSessionStart = true // one session here: its first run is the cold one under test
			if tt.minSamples > 0 {
				cfg.Latency.MinSamples = tt.minSamples
			}
			if tt.gate != "" {
				cfg.Latency.Gate = tt.gate
			}
			mkAll := func(ds []time.Duration) []*replay.Result {
				var out []*replay.Result
				for i, d := range ds {
					out = append(out, mk(int64(i+1), sql, rows("1", "a"), withDur(d)))
				}
				return out
			}
			var ctrl []*replay.Result
			if tt.ctrl != nil {
				ctrl = mkAll(tt.ctrl)
			}
			rep := run(t, cfg, mkAll(tt.base), mkAll(tt.cand), ctrl)
			tr := rep.Tenants[0]
			if len(tr.Latency) != 1 {
				t.Fatalf("latency rows = %d, want 1", len(tr.Latency))
			}
			row := tr.Latency[0]
			if row.Class != tt.want {
				t.Fatalf("latency class = %s (base %+v cand %+v ratio %v), want %s", row.Class, row.Baseline, row.Candidate, row.Ratio, tt.want)
			}
			if row.NeedsExplain != tt.wantExplain || (tt.wantExplain && row.ExplainSQL != sql) {
				t.Errorf("needs explain = %v (%q), want %v", row.NeedsExplain, row.ExplainSQL, tt.wantExplain)
			}
			if got := row.Baseline.N; got != len(tt.base)-tt.warmUp {
				t.Errorf("baseline N = %d, want %d (warm-up %d)", got, len(tt.base)-tt.warmUp, tt.warmUp)
			}
			f := tr.Findings[0]
			if wantReg := tt.want == Slower; f.Regression != wantReg || rep.Verdict.Regressions != wantReg {
				t.Errorf("regression = %v, verdict %v; want %v", f.Regression, rep.Verdict.Regressions, wantReg)
			}
			if tt.want == Slower && f.Class != Slower {
				t.Errorf("finding class = %s, want slower", f.Class)
			}
		})
	}
}

// TestLatencySkipsSessionStart: by default a session's first statement (a
// fresh connection loading its caches) is not measured, even without
// warm-up; with CountSessionStart it is.
func TestLatencySkipsSessionStart(t *testing.T) {
	for _, count := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Latency.WarmUp = 0
		cfg.Latency.CountSessionStart = count
		var base, cand []*replay.Result
		for i := int64(1); i <= 6; i++ {
			d := 10 * time.Millisecond
			if i == 1 {
				d = 300 * time.Millisecond // the cold first statement, on the candidate only
			}
			base = append(base, mk(i, "SELECT 1", rows("1", "a"), withDur(10*time.Millisecond)))
			cand = append(cand, mk(i, "SELECT 1", rows("1", "a"), withDur(d)))
		}
		rep := run(t, cfg, base, cand, nil)
		l := rep.Tenants[0].Latency[0]
		if want := map[bool]int{false: 5, true: 6}[count]; l.Candidate.N != want {
			t.Errorf("CountSessionStart=%v: candidate N = %d, want %d", count, l.Candidate.N, want)
		}
		if !count && l.Candidate.Max != 10*time.Millisecond {
			t.Errorf("the session's cold first statement was measured: max %v", l.Candidate.Max)
		}
	}
}

func TestLatencyOnlyCountsSuccesses(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Latency.WarmUp = 0
	cfg.Latency.CountSessionStart = true
	base := []*replay.Result{mk(1, "SELECT 1", rows("1", "a"), withDur(time.Millisecond)), mk(2, "SELECT 1", rows("1", "a"), withDur(time.Millisecond))}
	cand := []*replay.Result{mk(1, "SELECT 1", nil, withErr("57014", "timeout"), withDur(time.Minute)), mk(2, "SELECT 1", rows("1", "a"), withDur(time.Millisecond))}
	rep := run(t, cfg, base, cand, nil)
	if l := rep.Tenants[0].Latency[0]; l.Candidate.N != 1 || l.Candidate.Max != time.Millisecond {
		t.Errorf("candidate latency = %+v, want the one successful execution", l.Candidate)
	}
}

func TestSketch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ds []time.Duration
	for range 10000 {
		ds = append(ds, time.Duration(rng.ExpFloat64()*float64(10*time.Millisecond))+time.Microsecond)
	}
	var s sketch
	for _, d := range ds {
		s.add(d)
	}
	if len(s.buckets) > 1500 || s.exact != nil {
		t.Fatalf("sketch holds %d buckets, %d exact values", len(s.buckets), len(s.exact))
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	for _, q := range []float64{0.5, 0.95, 0.99} {
		exact := sorted[int(q*float64(len(sorted)))-1]
		got := s.quantile(q)
		if rel := float64(got-exact) / float64(exact); rel > 0.011 || rel < -0.011 {
			t.Errorf("p%v = %s, exact %s: off by %.2f%%", q*100, got, exact, rel*100)
		}
	}
	// Order independence: the same durations shuffled give the same sketch.
	var s2 sketch
	rng.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	for _, d := range ds {
		s2.add(d)
	}
	if s.quantiles() != s2.quantiles() {
		t.Errorf("shuffled input: %+v, want %+v", s2.quantiles(), s.quantiles())
	}
	// Small sets are exact (nearest rank).
	var s3 sketch
	for _, d := range []time.Duration{5, 1, 4, 2, 3} {
		s3.add(d)
	}
	if q := s3.quantiles(); q.P50 != 3 || q.P95 != 5 || q.Max != 5 || q.N != 5 {
		t.Errorf("small sketch = %+v", q)
	}
}
