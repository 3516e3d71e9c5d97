package compare

import (
	"container/heap"
	"context"
	"fmt"
	"math"

	"github.com/dbtwin/dbtwin/replay"
)

// The sides of a comparison, as indexes.
const (
	sideBaseline = iota
	sideCandidate
	sideControl
)

var sideNames = [...]string{"baseline", "candidate", "control"}

// pairKey identifies a statement across results files.
type pairKey struct {
	session string
	seq     int64
}

// entry is a statement waiting for its results from every side.
type entry struct {
	key     pairKey
	res     [3]*replay.Result
	have    uint8 // sides whose result arrived
	missing uint8 // sides declared not to have it
	done    bool
}

// stream is one results file being read.
type stream struct {
	side int
	rr   *replay.ResultsReader
	eof  bool
	n    int
	// ring holds the Seqs of the last window results read; low is the
	// highest Seq among the results read before them. By the window
	// assumption every result still unread has a Seq above low.
	ring    []int64
	ringPos int
	inRing  map[int64]bool // the Seqs in ring, to catch duplicates
	low     int64
	maxSeq  int64
	// waiting are entries lacking this side, by Seq (lazily cleaned);
	// need counts those still lacking it.
	waiting entryHeap
	need    int
}

// pairer pairs results from two or three files by (Session, Seq) while
// reading them all at once. See Config.PairWindow for the memory bound.
type pairer struct {
	streams []*stream
	all     uint8 // bit mask of the sides present
	pending map[pairKey]*entry
	window  int
	limit   int // hard cap on pending entries
	stats   *Stats
	emit    func(key pairKey, res [3]*replay.Result) error
}

// Stats are counters of one Compare call, for tests and diagnostics.
type Stats struct {
	// Read counts the results read per side (baseline, candidate, control).
	Read [3]int
	// Pairs is how many statements were emitted for comparison.
	Pairs int
	// MaxPending is the most statements ever waiting for their other
	// side(s) at once; with files out of order by at most PairWindow it
	// stays below about 2×PairWindow.
	MaxPending int
	// MaxQueued is the most entries ever held in the per-side wait queues
	// (pending ones plus already-matched ones not yet dropped).
	MaxQueued int
}

func newPairer(readers []*replay.ResultsReader, sides []int, window int, stats *Stats,
	emit func(pairKey, [3]*replay.Result) error) *pairer {
	p := &pairer{pending: map[pairKey]*entry{}, window: window, limit: 8*window + 64, stats: stats, emit: emit}
	for i, rr := range readers {
		p.streams = append(p.streams, &stream{side: sides[i], rr: rr, ring: make([]int64, 0, min(window, 1<<16)), inRing: map[int64]bool{}, low: math.MinInt64})
		p.all |= 1 << sides[i]
	}
	return p
}

// run reads every stream to its end, emitting each statement once all
// sides have its result or are known not to have it.
func (p *pairer) run(ctx context.Context) error {
	for i := 0; ; i++ {
		if i&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("pair results: %w", err)
			}
		}
		s := p.pick()
		if s == nil {
			break
		}
		if !s.rr.Next() {
			if err := s.rr.Err(); err != nil {
				return fmt.Errorf("pair results: %s: %w", sideNames[s.side], err)
			}
			s.eof = true
			s.low = math.MaxInt64
			if err := p.settle(s); err != nil {
				return err
			}
			continue
		}
		if err := p.add(s, s.rr.Result()); err != nil {
			return err
		}
	}
	if len(p.pending) != 0 { // cannot happen: every side's EOF settles its waiters
		return fmt.Errorf("pair results: %d statements left unpaired", len(p.pending))
	}
	return nil
}

// pick chooses the stream to read next: the one the most pending
// statements wait for (reading it either pairs them or, once it has
// moved a window past them, proves them missing), then the one furthest
// behind in Seq. Nil when every stream is at its end.
func (p *pairer) pick() *stream {
	var best *stream
	for _, s := range p.streams {
		if s.eof {
			continue
		}
		if best == nil || s.need > best.need || (s.need == best.need && s.maxSeq < best.maxSeq) {
			best = s
		}
	}
	return best
}

func (p *pairer) add(s *stream, r *replay.Result) error {
	p.stats.Read[s.side]++
	s.n++
	if r.Seq <= s.low {
		return fmt.Errorf("pair results: %s result of session %s seq %d comes %d or more results after a later statement: the file is more out of order than pair_window allows (%d); raise compare.pair_window",
			sideNames[s.side], r.Session, r.Seq, p.window, p.window)
	}
	if s.inRing[r.Seq] {
		return fmt.Errorf("pair results: %s has two results for seq %d (session %s)", sideNames[s.side], r.Seq, r.Session)
	}
	if r.Seq > s.maxSeq {
		s.maxSeq = r.Seq
	}
	s.inRing[r.Seq] = true
	// Slide the window; the Seq falling out of it raises low. (A result
	// seen twice is caught here while both are in the window, and as late
	// once the first has left it.)
	advanced := false
	if len(s.ring) < p.window {
		s.ring = append(s.ring, r.Seq)
	} else {
		old := s.ring[s.ringPos]
		delete(s.inRing, old)
		s.ring[s.ringPos] = r.Seq
		s.ringPos = (s.ringPos + 1) % p.window
		if old > s.low {
			s.low = old
			advanced = true
		}
	}

	key := pairKey{r.Session, r.Seq}
	bit := uint8(1) << s.side
	e := p.pending[key]
	if e == nil {
		e = &entry{key: key, have: bit}
		e.res[s.side] = r
		for _, o := range p.streams {
			if o == s {
				continue
			}
			if o.eof || key.seq <= o.low {
				e.missing |= 1 << o.side
				continue
			}
			heap.Push(&o.waiting, e)
			o.need++
		}
		if e.have|e.missing == p.all {
			if err := p.finish(e); err != nil {
				return err
			}
		} else {
			p.pending[key] = e
			if len(p.pending) > p.stats.MaxPending {
				p.stats.MaxPending = len(p.pending)
			}
			if len(p.pending) > p.limit {
				return fmt.Errorf("pair results: more than %d statements wait for their pair: the files are more out of order than pair_window (%d) allows; raise compare.pair_window", p.limit, p.window)
			}
		}
	} else {
		if e.have&bit != 0 {
			return fmt.Errorf("pair results: %s has two results for session %s seq %d", sideNames[s.side], r.Session, r.Seq)
		}
		e.have |= bit
		e.res[s.side] = r
		s.need--
		if e.have|e.missing == p.all {
			delete(p.pending, key)
			if err := p.finish(e); err != nil {
				return err
			}
		}
	}
	q := 0
	for _, o := range p.streams {
		q += o.waiting.Len()
	}
	if q > p.stats.MaxQueued {
		p.stats.MaxQueued = q
	}
	if advanced {
		return p.settle(s)
	}
	return nil
}

// settle declares s missing for the waiting statements whose Seq is at or
// below its low mark: by the window assumption they will not come.
func (p *pairer) settle(s *stream) error {
	bit := uint8(1) << s.side
	for s.waiting.Len() > 0 && s.waiting[0].key.seq <= s.low {
		e := heap.Pop(&s.waiting).(*entry)
		if e.done || e.have&bit != 0 {
			continue
		}
		e.missing |= bit
		s.need--
		if e.have|e.missing == p.all {
			delete(p.pending, e.key)
			if err := p.finish(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *pairer) finish(e *entry) error {
	e.done = true
	res := e.res
	e.res = [3]*replay.Result{}
	p.stats.Pairs++
	return p.emit(e.key, res)
}

// entryHeap is a min-heap of entries by Seq, then session.
type entryHeap []*entry

func (h entryHeap) Len() int { return len(h) }
func (h entryHeap) Less(i, j int) bool {
	if h[i].key.seq != h[j].key.seq {
		return h[i].key.seq < h[j].key.seq
	}
	return h[i].key.session < h[j].key.session
}
func (h entryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x any)   { *h = append(*h, x.(*entry)) }
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
