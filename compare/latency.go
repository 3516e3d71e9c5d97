package compare

import (
	"math"
	"slices"
	"time"
)

// sketchExact is how many durations a sketch keeps exactly before it
// switches to log buckets.
const sketchExact = 64

// sketchGamma is the ratio between consecutive bucket bounds: a quantile
// read from the buckets is within (γ−1)/(γ+1) ≈ 1% of a duration that was
// really measured.
const sketchGamma = 1.02

// sketch estimates quantiles of durations in bounded memory and
// independently of the order durations arrive in (so a report does not
// depend on completion order). Up to sketchExact durations are kept as
// they are and quantiles are exact; beyond that they go into logarithmic
// buckets (a DDSketch-style histogram): one counter per bucket that is
// used, at most ~1,500 buckets between 1 ns and one hour, typically a few
// dozen.
type sketch struct {
	n       int
	max     time.Duration
	exact   []time.Duration
	buckets map[int32]uint32
	zero    int // durations ≤ 0 once in bucket mode
}

func (s *sketch) add(d time.Duration) {
	s.n++
	if d > s.max {
		s.max = d
	}
	if s.buckets == nil {
		s.exact = append(s.exact, d)
		if len(s.exact) <= sketchExact {
			return
		}
		s.buckets = map[int32]uint32{}
		for _, x := range s.exact {
			s.bucket(x)
		}
		s.exact = nil
		return
	}
	s.bucket(d)
}

func (s *sketch) bucket(d time.Duration) {
	if d <= 0 {
		s.zero++
		return
	}
	s.buckets[int32(math.Ceil(math.Log(float64(d))/math.Log(sketchGamma)))]++
}

// quantile returns the q-quantile by the nearest-rank method.
func (s *sketch) quantile(q float64) time.Duration {
	if s.n == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(s.n)))
	rank = max(1, min(rank, s.n))
	if s.buckets == nil {
		sorted := slices.Clone(s.exact)
		slices.Sort(sorted)
		return sorted[rank-1]
	}
	if rank <= s.zero {
		return 0
	}
	keys := make([]int32, 0, len(s.buckets))
	for k := range s.buckets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	seen := s.zero
	for _, k := range keys {
		seen += int(s.buckets[k])
		if seen >= rank {
			// The bucket (γ^(k−1), γ^k]: its midpoint in relative terms.
			v := 2 * math.Pow(sketchGamma, float64(k)) / (sketchGamma + 1)
			return min(time.Duration(math.Round(v)), s.max)
		}
	}
	return s.max
}

func (s *sketch) quantiles() Quantiles {
	return Quantiles{N: s.n, P50: s.quantile(0.50), P95: s.quantile(0.95), Max: s.max}
}

// judgeLatency classifies a fingerprint's latency: Slower or Faster when
// the gate quantile moved by at least the ratio and the floor, Noise when
// the control moved the same way, Same otherwise, Skipped with too few
// measurements.
func judgeLatency(cfg *LatencyConfig, base, cand Quantiles, ctrl *Quantiles) (Class, float64) {
	if base.N < cfg.MinSamples || cand.N < cfg.MinSamples {
		return Skipped, 0
	}
	gate := func(q Quantiles) time.Duration {
		if cfg.Gate == "p50" {
			return q.P50
		}
		return q.P95
	}
	b, c := gate(base), gate(cand)
	ratio := ratioOf(c, b)
	moved := func(from, to time.Duration) Class {
		switch {
		case ratioOf(to, from) >= cfg.Ratio && to-from >= cfg.Floor:
			return Slower
		case ratioOf(from, to) >= cfg.Ratio && from-to >= cfg.Floor:
			return Faster
		}
		return Same
	}
	class := moved(b, c)
	if class == Slower && ctrl != nil && ctrl.N >= cfg.MinSamples && moved(b, gate(*ctrl)) == Slower {
		class = Noise
	}
	return class, ratio
}

// ratioOf returns a/b, treating a zero b as 1 ns.
func ratioOf(a, b time.Duration) float64 {
	if b <= 0 {
		b = 1
	}
	return float64(a) / float64(b)
}
