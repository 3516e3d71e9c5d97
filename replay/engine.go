package replay

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/dbtwin/dbtwin/sqlinfo"
	"github.com/jackc/pgx/v5/pgconn"
)

// Mode is how the replay engine schedules sessions.
type Mode string

// The replay modes.
const (
	// ModeOrdered starts statements in captured Seq order across all
	// sessions and runs a statement that is not a plain read only when
	// nothing else runs unblocked (plain reads of different sessions may
	// overlap: they see the same data either way), so two replays of the
	// same workload on identical databases give identical results. A
	// statement blocked by a lock that another replayed session holds does
	// not stall the replay: the engine notices (pg_blocking_pids) and goes
	// on starting the following statements until the blocker releases it.
	ModeOrdered Mode = "ordered"
	// ModeConcurrent runs sessions in parallel (up to
	// EngineOptions.MaxConns), each strictly in its own captured order, as
	// fast as possible or at the recorded pace (EngineOptions.Speed).
	// Results across sessions are not deterministic, as in production.
	ModeConcurrent Mode = "concurrent"
)

// Defaults of EngineOptions.
const (
	DefaultStatementTimeout = 30 * time.Second
	DefaultSampleRows       = 20
	DefaultSampleValueBytes = 1024
	DefaultLockWaitGrace    = 300 * time.Microsecond
	DefaultSearchPath       = `"$user", public`
	DefaultMaxBacklog       = 10_000
)

// EngineOptions configure Replay. The zero value replays in ordered mode with the
// defaults above.
type EngineOptions struct {
	// Mode is ModeOrdered (the default) or ModeConcurrent.
	Mode Mode
	// MaxConns bounds the sessions connected at once in concurrent mode; a
	// session waits for a free slot before it connects. 0: no bound. A
	// bound lower than the workload's concurrency can deadlock a workload
	// whose sessions wait for each other's locks; keep it generous.
	MaxConns int
	// Speed replays at the recorded pace (the gaps between captured event
	// times divided by Speed) in concurrent mode: 1 is real time, 2 twice as
	// fast. 0: as fast as possible. Ordered mode ignores it.
	Speed float64
	// MaxBacklog bounds the events read ahead of the sessions in concurrent
	// mode (memory). 0: DefaultMaxBacklog.
	MaxBacklog int

	// SearchPath is pinned on every replay connection. "": DefaultSearchPath.
	SearchPath string
	// StatementTimeout cancels a runaway statement, which is recorded with
	// StatusTimeout. 0: DefaultStatementTimeout; negative: no timeout.
	StatementTimeout time.Duration
	// LockTimeout is pinned as lock_timeout. 0: none.
	LockTimeout time.Duration

	// SampleRows is how many rows of each result are kept as text.
	// 0: DefaultSampleRows; negative: none.
	SampleRows int
	// SampleValueBytes cuts longer sampled values. 0: DefaultSampleValueBytes.
	SampleValueBytes int

	// LockWaitGrace is how long ordered mode lets a statement run before it
	// asks the server whether another replayed session blocks it (only
	// when another session could: one in a transaction, running, or
	// holding advisory locks); later checks back off up to 50 ms. A check
	// is one cheap query on a monitor connection, so the grace is short.
	// 0: DefaultLockWaitGrace.
	LockWaitGrace time.Duration

	// Fingerprint fills Result.Fingerprint. It is called from several
	// goroutines at once. Nil: sqlinfo.Fingerprint (pg_query's fingerprint;
	// "" for a statement the parser rejects).
	Fingerprint func(sql string) string
	// Progress, if set, is called now and then (at most every 200 ms, and
	// once at the end) with the statements done and the total, or -1 when
	// the source does not know its total (see Totaler).
	Progress func(done, total int64)
	// Logger receives warnings (connections lost, sessions that could not
	// connect). Nil: discard.
	Logger *slog.Logger
}

// EngineStats summarise a replay.
type EngineStats struct {
	// Sessions is the number of captured sessions seen.
	Sessions int64
	// Statements is the number of results written.
	Statements int64
	// OK, Errors, Timeouts, ConnLost and Skipped count results by status.
	OK, Errors, Timeouts, ConnLost, Skipped int64
	// LockWaits counts statements that waited for another replayed session
	// (ordered mode).
	LockWaits int64
	// Elapsed is the wall-clock time of the replay.
	Elapsed time.Duration
}

// EventSource is what the replay engine consumes: a workload in the
// bufio.Scanner shape. Every workload reader satisfies it, and SliceSource
// serves one from memory.
type EventSource interface {
	// Next advances to the next event; false at the end or on an error.
	Next() bool
	// Event is the current event.
	Event() Event
	// Err is the first error Next met, nil at a clean end.
	Err() error
}

// Totaler is an optional ability of an EventSource: the number of statement
// events it holds, for progress reports.
type Totaler interface {
	Total() int64
}

// SliceSource is an EventSource over events in memory.
type SliceSource struct {
	events []Event
	i      int
}

var (
	_ EventSource = (*SliceSource)(nil)
	_ Totaler     = (*SliceSource)(nil)
	_ EventSource = Reader(nil) // every workload reader feeds the engine
)

// NewSliceSource returns a source yielding events in slice order.
func NewSliceSource(events []Event) *SliceSource { return &SliceSource{events: events, i: -1} }

// Next advances to the next event.
func (s *SliceSource) Next() bool {
	if s.i+1 >= len(s.events) {
		s.i = len(s.events)
		return false
	}
	s.i++
	return true
}

// Event is the current event.
func (s *SliceSource) Event() Event { return s.events[s.i] }

// Err is always nil.
func (s *SliceSource) Err() error { return nil }

// Total counts the statement events.
func (s *SliceSource) Total() int64 {
	var n int64
	for i := range s.events {
		if s.events[i].Kind == KindStatement {
			n++
		}
	}
	return n
}

// Replay runs the workload src against the database targetDSN and writes
// one Result per statement event to out, in completion order.
//
// Each captured session gets its own connection (opened from targetDSN; the
// captured database and user are only recorded), its statements run
// strictly in captured order, and transaction blocks run as captured, so a
// failing statement leaves its transaction aborted exactly as the server
// decides. Simple-protocol events run through the simple protocol (a string
// of several statements is one event and one Result), events with Params
// through the extended protocol (unnamed statement, text parameters with the
// captured type OIDs; binary ones as captured).
//
// Every connection has these settings pinned as startup parameters:
// TimeZone=UTC, DateStyle='ISO, MDY', IntervalStyle=postgres,
// extra_float_digits=1, bytea_output=hex, search_path, statement_timeout,
// lock_timeout. Startup parameters are the session defaults, so RESET ALL
// and DISCARD ALL in the workload restore them; an explicit SET in the
// workload changes them, as it did in production.
//
// A connection that breaks (the backend was terminated, the network
// failed) gives StatusConnLost for the statement it hit; the session goes
// on on a new connection. Events of kind connect and disconnect open and
// close the session's connection; sessions still open when src ends are
// closed in the order they were first seen.
//
// Cancelling ctx stops the replay promptly: statements in flight are
// abandoned without a result, and Replay returns ctx's error. Every result
// written before that is complete; the caller flushes and closes out (see
// ResultsWriter). Replay returns an error only when it could not go on:
// the source, out or the target (ordered mode's monitor connection) failed.
func Replay(ctx context.Context, src EventSource, targetDSN string, opts EngineOptions, out ResultWriter) (EngineStats, error) {
	start := time.Now()
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return EngineStats{}, err
	}
	base, err := pgconn.ParseConfig(targetDSN)
	if err != nil {
		return EngineStats{}, fmt.Errorf("parse target DSN %s: %w", pgdsn.Redact(targetDSN), err)
	}
	pinSettings(base, &opts)

	e := &engine{opts: &opts, base: base, out: out, log: opts.Logger, fps: newFingerprintCache(opts.Fingerprint, 4096)}
	if t, ok := src.(Totaler); ok {
		e.total = t.Total()
	} else {
		e.total = -1
	}
	stopProgress := e.startProgress()

	waitWriter := e.startWriter()
	pf := newPrefetchSource(ctx, src)
	switch opts.Mode {
	case ModeConcurrent:
		err = e.runConcurrent(ctx, pf)
	default:
		err = e.runOrdered(ctx, pf)
	}
	pf.close()
	waitWriter()
	stopProgress()

	st := e.stats.snapshot()
	st.Elapsed = time.Since(start)
	if err == nil {
		if werr := e.writeErr(); werr != nil {
			err = werr
		}
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("replay interrupted: %w", context.Cause(ctx))
	}
	return st, err
}

func (o EngineOptions) withDefaults() EngineOptions {
	if o.Mode == "" {
		o.Mode = ModeOrdered
	}
	if o.SearchPath == "" {
		o.SearchPath = DefaultSearchPath
	}
	if o.StatementTimeout == 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	if o.SampleRows == 0 {
		o.SampleRows = DefaultSampleRows
	}
	if o.SampleRows < 0 {
		o.SampleRows = 0
	}
	if o.SampleValueBytes <= 0 {
		o.SampleValueBytes = DefaultSampleValueBytes
	}
	if o.LockWaitGrace <= 0 {
		o.LockWaitGrace = DefaultLockWaitGrace
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = DefaultMaxBacklog
	}
	if o.Fingerprint == nil {
		o.Fingerprint = func(sql string) string {
			fp, _ := sqlinfo.Fingerprint(sql)
			return fp
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o EngineOptions) validate() error {
	switch o.Mode {
	case ModeOrdered, ModeConcurrent:
	default:
		return fmt.Errorf("check replay options: unknown mode %q (want %q or %q)", o.Mode, ModeOrdered, ModeConcurrent)
	}
	if o.Speed < 0 {
		return fmt.Errorf("check replay options: speed %g is negative", o.Speed)
	}
	if o.MaxConns < 0 {
		return fmt.Errorf("check replay options: max conns %d is negative", o.MaxConns)
	}
	return nil
}

// pinSettings sets the session settings every replay connection starts
// with (see Replay).
func pinSettings(cfg *pgconn.Config, o *EngineOptions) {
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	p := cfg.RuntimeParams
	p["TimeZone"] = "UTC"
	p["DateStyle"] = "ISO, MDY"
	p["IntervalStyle"] = "postgres"
	p["extra_float_digits"] = "1"
	p["bytea_output"] = "hex"
	p["search_path"] = o.SearchPath
	st := int64(0)
	if o.StatementTimeout > 0 {
		st = max(1, o.StatementTimeout.Milliseconds())
	}
	p["statement_timeout"] = strconv.FormatInt(st, 10)
	p["lock_timeout"] = strconv.FormatInt(max(0, o.LockTimeout.Milliseconds()), 10)
	if p["application_name"] == "" {
		p["application_name"] = "dbtwin replay"
	}
}

// engine is the state both modes share.
type engine struct {
	opts  *EngineOptions
	base  *pgconn.Config
	log   *slog.Logger
	total int64
	fps   *fingerprintCache
	done  atomic.Int64
	stats replayCounters

	out       ResultWriter
	queue     resultQueue
	outErr    error // owned by the writer goroutine until it finishes
	outFailed atomic.Bool
}

type replayCounters struct {
	sessions, statements, ok, errors, timeouts, connLost, skipped, lockWaits atomic.Int64
}

func (c *replayCounters) snapshot() EngineStats {
	return EngineStats{
		Sessions: c.sessions.Load(), Statements: c.statements.Load(),
		OK: c.ok.Load(), Errors: c.errors.Load(), Timeouts: c.timeouts.Load(),
		ConnLost: c.connLost.Load(), Skipped: c.skipped.Load(), LockWaits: c.lockWaits.Load(),
	}
}

// emit hands one result to the writer goroutine; safe for concurrent use.
// Encoding and writing happen off the statements' critical path, in
// batches: waking the writer for every result would cost more than
// encoding it.
func (e *engine) emit(r *Result) {
	switch r.Status {
	case StatusOK:
		e.stats.ok.Add(1)
	case StatusError:
		e.stats.errors.Add(1)
	case StatusTimeout:
		e.stats.timeouts.Add(1)
	case StatusConnLost:
		e.stats.connLost.Add(1)
	case StatusSkipped:
		e.stats.skipped.Add(1)
	}
	if r.LockWait != nil {
		e.stats.lockWaits.Add(1)
	}
	e.stats.statements.Add(1)
	q := &e.queue
	q.mu.Lock()
	for len(q.pending) >= resultQueueMax {
		q.space.Wait()
	}
	q.pending = append(q.pending, r)
	n := len(q.pending)
	q.mu.Unlock()
	if n == resultQueueWake {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// resultQueue holds results between emit and the writer goroutine, which
// takes them every resultQueueTick, or sooner when resultQueueWake wait;
// emit blocks while resultQueueMax wait.
type resultQueue struct {
	mu      sync.Mutex
	space   sync.Cond
	pending []*Result
	wake    chan struct{}
}

const (
	resultQueueTick = 5 * time.Millisecond
	resultQueueWake = 512
	resultQueueMax  = 2048
)

// startWriter starts the goroutine that passes results to out, in the
// order emitted; the returned function waits for it after the last emit.
func (e *engine) startWriter() (wait func()) {
	q := &e.queue
	q.space.L = &q.mu
	q.wake = make(chan struct{}, 1)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(resultQueueTick)
		defer t.Stop()
		var batch []*Result
		for {
			stopping := false
			select {
			case <-t.C:
			case <-q.wake:
			case <-stop:
				stopping = true
			}
			q.mu.Lock()
			batch, q.pending = q.pending, batch[:0]
			q.space.Broadcast()
			q.mu.Unlock()
			for i, r := range batch {
				if e.outErr == nil {
					if err := e.out.WriteResult(r); err != nil {
						e.outErr = err
						e.outFailed.Store(true)
					}
				}
				batch[i] = nil
			}
			e.done.Add(int64(len(batch)))
			if stopping {
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
	}
}

// writeErr is out's error; call it after the writer finished.
func (e *engine) writeErr() error {
	if e.outErr != nil {
		return fmt.Errorf("write results: %w", e.outErr)
	}
	return nil
}

// writeFailed reports whether out failed, so the replay stops early.
func (e *engine) writeFailed() bool { return e.outFailed.Load() }

// startProgress calls EngineOptions.Progress periodically until the returned
// function is called, which reports once more.
func (e *engine) startProgress() (stop func()) {
	if e.opts.Progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				e.opts.Progress(e.done.Load(), e.total)
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
		e.opts.Progress(e.done.Load(), e.total)
	}
}
