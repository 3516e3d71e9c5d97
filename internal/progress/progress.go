// Package progress shows a person how a clone or restore is going. It
// implements clone.Progress two ways:
//
//   - on a terminal, live bars drawn with github.com/vbauerster/mpb/v8: one
//     per table being copied (bytes copied / estimated), an overall bar
//     (bytes, percentage, throughput, ETA) and a status line naming the
//     current phase, with a line printed above the bars as each phase ends;
//   - anywhere else (CI logs, files, pipes), plain slog lines: one per
//     phase, one when the copy starts, one per table finished with its rows,
//     bytes and MB/s.
//
// It only draws: the numbers come from package clone. Choose the mode with
// IsTerminal:
//
//	r := progress.New(os.Stderr, progress.IsTerminal(os.Stderr), logger)
//	res, err := clone.Clone(ctx, src, dst, clone.Options{Progress: r})
//	r.Close()
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal, which is when bars make sense.
// w is one when it is an *os.File, or wraps one and says which through an
// Fd method as *os.File does, on a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// Renderer draws clone progress. It implements clone.Progress and is safe
// for concurrent use. Call Close when the clone returns, whatever it
// returned, so the bars are taken down and the terminal is left clean.
type Renderer struct {
	w   io.Writer
	log *slog.Logger
	now func() time.Time

	// Read by the status line, which mpb draws from its own goroutine:
	// atomics, so drawing never waits for mu (Advance holds mu while it
	// asks mpb for a new bar, and mpb may be drawing).
	phase   atomic.Pointer[phaseState]
	done    atomic.Int64
	planned atomic.Int64

	mu        sync.Mutex
	estimates map[string]int64
	copied    map[string]int64
	closed    bool

	// terminal mode only
	p      *mpb.Progress
	status *mpb.Bar
	total  *mpb.Bar
	bars   map[string]*mpb.Bar
	nameW  int
	totalN int64 // the overall bar's current total
	sumCur int64
}

var _ clone.Progress = (*Renderer)(nil)

type phaseState struct {
	name  string
	start time.Time
}

// New returns a Renderer writing to w: bars when isTerminal, otherwise
// lines through logger (nil: a text logger on w). In terminal mode logger
// is not used; write nothing else to w until Close, or it tears the bars.
func New(w io.Writer, isTerminal bool, logger *slog.Logger) *Renderer {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(w, nil))
	}
	r := &Renderer{
		w:         w,
		log:       logger,
		now:       time.Now,
		estimates: map[string]int64{},
		copied:    map[string]int64{},
		bars:      map[string]*mpb.Bar{},
	}
	if isTerminal {
		r.p = mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(150*time.Millisecond))
		r.status = r.p.New(0, mpb.NopStyle(), mpb.BarPriority(math.MaxInt),
			mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return r.statusLine() })))
	}
	return r
}

// Writer returns a writer for the command's own log lines while r is open:
// in terminal mode they are printed above the bars instead of tearing them;
// otherwise, and after Close, they go straight to the Renderer's writer.
func (r *Renderer) Writer() io.Writer { return aboveBars{r} }

type aboveBars struct{ r *Renderer }

func (a aboveBars) Write(b []byte) (int, error) {
	a.r.mu.Lock()
	closed := a.r.closed
	a.r.mu.Unlock()
	if a.r.p != nil && !closed {
		if n, err := a.r.p.Write(b); err == nil {
			return n, nil
		}
	}
	return a.r.w.Write(b)
}

func (r *Renderer) statusLine() string {
	ph := r.phase.Load()
	if ph == nil {
		return ""
	}
	s := fmt.Sprintf("▸ %s %s", ph.name, r.now().Sub(ph.start).Round(time.Second))
	if planned := r.planned.Load(); planned > 0 {
		s += fmt.Sprintf(" · %d/%d tables", r.done.Load(), planned)
	}
	return s
}

// PhaseStart implements clone.Progress.
func (r *Renderer) PhaseStart(name string) {
	r.phase.Store(&phaseState{name: name, start: r.now()})
	if r.p == nil {
		r.log.Debug("phase started", "phase", name)
	}
}

// PhaseDone implements clone.Progress.
func (r *Renderer) PhaseDone(ph clone.Phase) {
	if cur := r.phase.Load(); cur != nil && cur.name == ph.Name {
		r.phase.CompareAndSwap(cur, nil)
	}
	if r.p == nil {
		r.log.Info("phase done", "phase", ph.Name, "duration", ph.Duration.Round(time.Millisecond))
		return
	}
	fmt.Fprintf(r.p, "✓ %-10s %s\n", ph.Name, ph.Duration.Round(time.Millisecond))
}

// Start implements clone.Progress. One Renderer may watch several clones
// in turn (one per tenant): each Start begins a new overall bar and the
// previous one is left complete on screen.
func (r *Renderer) Start(plan []clone.TableInfo) {
	var total int64
	r.mu.Lock()
	prev := r.total
	r.total = nil
	r.estimates = map[string]int64{}
	r.copied = map[string]int64{}
	r.sumCur = 0
	for _, t := range plan {
		r.estimates[t.Name] = t.Bytes
		total += t.Bytes
		r.nameW = max(r.nameW, min(len(t.Name), 40))
	}
	r.done.Store(0)
	r.planned.Store(int64(len(plan)))
	r.totalN = total
	closed, nameW := r.closed, r.nameW
	r.mu.Unlock()
	if prev != nil {
		prev.SetTotal(-1, true)
	}
	if closed {
		return
	}
	if r.p == nil {
		r.log.Info("copying tables", "tables", len(plan), "bytes", total, "size", humanBytes(total))
		return
	}
	bar := r.p.New(0, mpb.BarStyle(), mpb.BarPriority(math.MaxInt-1),
		mpb.PrependDecorators(
			decor.Name("total", decor.WC{W: nameW + 1, C: decor.DindentRight}),
			decor.CountersKibiByte("% .1f / % .1f", decor.WC{W: 22}),
		),
		mpb.AppendDecorators(
			decor.Percentage(decor.WC{W: 5}),
			decor.Name(" "),
			decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WC{W: 12}),
			decor.Name(" ETA "),
			decor.AverageETA(decor.ET_STYLE_GO),
		))
	bar.SetTotal(max(total, 1), false)
	r.mu.Lock()
	r.total = bar
	r.mu.Unlock()
}

// Advance implements clone.Progress.
func (r *Renderer) Advance(table string, n int64) {
	r.mu.Lock()
	r.copied[table] += n
	cur := r.copied[table]
	est := r.estimates[table]
	r.sumCur += n
	grow := r.sumCur > r.totalN
	if grow {
		r.totalN = r.sumCur
	}
	totalN := r.totalN
	totalBar := r.total
	var bar *mpb.Bar
	if r.p != nil && !r.closed {
		bar = r.bars[table]
		if bar == nil {
			name := table
			if len(name) > 40 {
				name = name[:39] + "…"
			}
			// Total 0 at creation: the bar never completes on its own
			// when the stream outgrows the estimate; TableDone ends it.
			bar = r.p.New(0, mpb.BarStyle(), mpb.BarRemoveOnComplete(),
				mpb.PrependDecorators(
					decor.Name(name, decor.WC{W: r.nameW + 1, C: decor.DindentRight}),
					decor.CountersKibiByte("% .1f / % .1f", decor.WC{W: 22}),
				),
				mpb.AppendDecorators(decor.Percentage(decor.WC{W: 5})))
			r.bars[table] = bar
		}
	}
	r.mu.Unlock()
	if bar == nil {
		return
	}
	bar.SetTotal(max(est, cur, 1), false)
	bar.IncrInt64(n)
	if totalBar != nil {
		if grow {
			totalBar.SetTotal(totalN, false)
		}
		totalBar.IncrInt64(n)
	}
}

// TableDone implements clone.Progress.
func (r *Renderer) TableDone(t clone.TableResult) {
	r.done.Add(1)
	r.mu.Lock()
	bar := r.bars[t.Name]
	delete(r.bars, t.Name)
	r.mu.Unlock()
	if r.p == nil {
		r.log.Info("table copied", "table", t.Name, "rows", t.Rows, "bytes", t.Bytes,
			"duration", t.Duration.Round(time.Millisecond), "MB/s", mbPerSecond(t.Bytes, t.Duration),
			"chunks", t.Chunks, "format", t.Format)
		return
	}
	if bar != nil {
		bar.SetTotal(-1, true) // complete at whatever was copied; the bar goes away
	}
}

// Close takes the bars down: the overall bar stays on screen, complete if
// every table was copied; the others are removed. It waits until the last
// frame is drawn. Events after Close are ignored. Close is idempotent.
func (r *Renderer) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	bars := r.bars
	r.bars = map[string]*mpb.Bar{}
	complete := r.done.Load() == r.planned.Load()
	total := r.total
	r.mu.Unlock()
	if r.p == nil {
		return
	}
	for _, b := range bars {
		b.Abort(true)
	}
	if total != nil {
		if complete {
			total.SetTotal(-1, true)
		} else {
			total.Abort(false)
		}
	}
	r.status.Abort(true)
	r.p.Wait()
}

func mbPerSecond(bytes int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(bytes)/1e6/d.Seconds())
}

func humanBytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
