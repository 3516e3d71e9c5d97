package replay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Ordered mode.
//
// A dispatcher goroutine reads the workload and hands each event to its
// session's worker goroutine (one per session, each with its own
// connection). Before it starts an event, it waits until starting it cannot
// change what any statement sees:
//
//   - no other statement runs unblocked (every running statement waits for
//     a lock held by another replayed session), or
//   - the event and every statement running unblocked are pure reads
//     (engineIsPureRead: a plain SELECT or a BEGIN): reads running side by
//     side see the same data in any interleaving, so they may overlap.
//
// So statements start in captured order, a write never overlaps anything
// that runs, and two replays of one workload on identical databases take
// the same path. The one exception is the server's: when a commit releases
// several statements waiting for the same row, which of them gets it first
// is up to the lock manager; their results are the same, their LockWaits
// may not be (see LockWait).
//
// Logs record statements when they start, so a captured UPDATE that waited
// for another session's COMMIT comes before that COMMIT. When a statement
// has not finished after EngineOptions.LockWaitGrace, the dispatcher asks
// the server (pg_blocking_pids, from a monitor connection) whether replayed
// sessions block it. If so, the statement is recorded as waiting (LockWait)
// and the dispatcher goes on with the following events; the session's own
// later statements queue behind it and start, in captured order and by the
// same rules, once it finishes. If it is not blocked, it is just slow and
// the dispatcher waits for it (re-checking with a back-off up to 50 ms, for
// a statement that runs a while and then blocks).
//
// A blocked statement stays blocked until a lock is released, which happens
// only when a statement finishes (a transaction ends, a savepoint rolls
// back, an advisory lock is released, a statement fails) or a session
// closes; the cached "blocked" status of every running statement is
// re-checked after such a completion.

const (
	maxLockCheckInterval = 50 * time.Millisecond
	maxQueuedReads       = 16 // pure reads queued per session before admit waits
)

// orderedOp is one event handed to a session worker.
type orderedOp struct {
	ev      Event
	pure    bool // may overlap other pure operations
	overlap bool // pure, and the next event is a pure read of another session

	mu       sync.Mutex // guards lockWait: set by the dispatcher, read by the worker
	lockWait *LockWait

	// filled by the worker before it reports completion
	releases bool // may have released locks
}

func newOrderedOp(ev Event) *orderedOp {
	op := &orderedOp{ev: ev}
	switch ev.Kind {
	case KindConnect:
		op.pure = true
	case KindStatement:
		op.pure = engineIsPureRead(ev.SQL)
	}
	return op
}

type orderedSession struct {
	s     *replaySession
	work  chan *orderedOp
	cur   *orderedOp   // running (dispatcher-owned)
	queue []*orderedOp // waiting behind cur (dispatcher-owned)

	blocked   bool      // cur is known to wait for another replayed session
	nextCheck time.Time // when to ask the server about cur next
	checks    int       // checks of cur that found it not blocked
	ready     bool      // cur finished, queue[0] waits for its turn (in ordered.ready)
	closing   bool      // the last event dispatched is a disconnect
	gone      bool      // disconnect done, worker gone

	// set by the worker after each operation
	tx       atomic.Uint32 // transaction status of the connection ('I', 'T', 'E')
	advisory atomic.Bool   // the session used advisory locks
}

type ordered struct {
	e       *engine
	ctx     context.Context
	mon     *pgconn.PgConn
	grace   time.Duration
	byID    map[string]*orderedSession
	order   []*orderedSession // first-seen order, for closing at the end
	running map[*orderedSession]struct{}
	ready   []*orderedSession
	done    chan *orderedSession
	quit    chan struct{}
	workers sync.WaitGroup
	timer   *time.Timer
}

func (e *engine) runOrdered(ctx context.Context, src EventSource) (err error) {
	mon, err := e.connectMonitor(ctx)
	if err != nil {
		return err
	}
	o := &ordered{
		e: e, ctx: ctx, mon: mon, grace: e.opts.LockWaitGrace,
		byID:    map[string]*orderedSession{},
		running: map[*orderedSession]struct{}{},
		done:    make(chan *orderedSession, 64),
		quit:    make(chan struct{}),
		timer:   time.NewTimer(time.Hour),
	}
	o.timer.Stop()
	defer o.shutdown()

	for src.Next() {
		if ctx.Err() != nil || e.writeFailed() {
			return nil
		}
		ev := src.Event()
		os := o.sessionFor(ev.Session)
		os.closing = ev.Kind == KindDisconnect
		op := newOrderedOp(ev)
		if op.pure {
			// A pure read may overlap a following pure read of another
			// session: then it must not run inline.
			if pk, ok := src.(interface{ peek() (*Event, bool) }); ok {
				if next, ok := pk.peek(); ok && next.Session != ev.Session && newOrderedOp(*next).pure {
					op.overlap = true
				}
			}
		}
		if err := o.admit(os, op); err != nil {
			return err
		}
	}
	if err := src.Err(); err != nil {
		return fmt.Errorf("read workload: %w", err)
	}
	// Close what the workload left open, in first-seen order (a copy:
	// closing compacts o.order).
	for _, os := range slices.Clone(o.order) {
		if !os.gone && !os.closing {
			os.closing = true
			if err := o.admit(os, newOrderedOp(Event{Kind: KindDisconnect, Session: os.s.id})); err != nil {
				return err
			}
		}
	}
	return o.drain()
}

func (e *engine) connectMonitor(ctx context.Context) (*pgconn.PgConn, error) {
	cfg := e.base.Copy()
	cfg.RuntimeParams["application_name"] = "dbtwin replay monitor"
	cfg.RuntimeParams["statement_timeout"] = "10000"
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect replay monitor: %w", err)
	}
	const q = `SELECT p, pg_blocking_pids(p) FROM unnest($1::int4[]) AS p`
	if _, err := c.Prepare(ctx, "dbtwin_blocking_pids", q, nil); err != nil {
		c.Close(ctx)
		return nil, fmt.Errorf("prepare replay monitor query: %w", err)
	}
	return c, nil
}

// sessionFor returns the session with id, starting its worker if it is new.
func (o *ordered) sessionFor(id string) *orderedSession {
	if os, ok := o.byID[id]; ok && !os.gone {
		return os
	}
	os := &orderedSession{s: newReplaySession(o.e, id), work: make(chan *orderedOp, 1)}
	o.byID[id] = os
	os.tx.Store('I')
	o.order = append(o.order, os)
	o.e.stats.sessions.Add(1)
	o.workers.Go(func() { o.work(os) })
	return os
}

// work is a session's worker goroutine.
func (o *ordered) work(os *orderedSession) {
	defer os.s.close()
	for op := range os.work {
		res := o.perform(os, op)
		select {
		case o.done <- os:
		case <-o.quit:
			return
		}
		// Written after reporting completion, so that the dispatcher starts
		// the next statement while this one's result is encoded.
		if res != nil {
			op.mu.Lock()
			res.LockWait = op.lockWait
			op.mu.Unlock()
			o.e.emit(res)
		}
	}
}

// perform runs one operation on its session's connection and notes what
// the dispatcher needs to know afterwards. It returns the statement's
// result, nil for other operations and for statements ctx interrupted.
func (o *ordered) perform(os *orderedSession, op *orderedOp) *Result {
	s := os.s
	var res *Result
	switch op.ev.Kind {
	case KindConnect:
		s.noteConnect(&op.ev)
		if err := s.connect(o.ctx); err != nil && o.ctx.Err() == nil {
			o.e.log.Warn("replay session could not connect; its statements will retry", "session", s.id, "err", err)
		}
	case KindDisconnect:
		s.close()
		op.releases = true
	case KindStatement:
		var interrupted bool
		res, interrupted = s.exec(o.ctx, &op.ev)
		if interrupted {
			res = nil
		} else {
			op.releases = mayReleaseLocks(s, res)
			if !os.advisory.Load() && strings.Contains(strings.ToLower(op.ev.SQL), "advisory") {
				os.advisory.Store(true)
			}
		}
	}
	tx := byte('I')
	if s.conn != nil && !s.conn.IsClosed() {
		tx = s.conn.TxStatus()
	}
	os.tx.Store(uint32(tx))
	return res
}

// performInline runs op in the dispatcher's goroutine, sparing two
// goroutine hand-offs. Only for when nothing else runs and no other
// session could hold a lock op might wait for: then op can only finish
// (or be slow), and the dispatcher would wait for it anyway.
func (o *ordered) performInline(os *orderedSession, op *orderedOp) {
	res := o.perform(os, op)
	if res != nil {
		o.e.emit(res)
	}
	if op.ev.Kind == KindDisconnect && len(os.queue) == 0 {
		o.retire(os)
	}
}

// mayBlock reports whether a session other than os could hold a lock that
// os's statement (running, or about to run when os.cur is nil) waits for:
// one inside a transaction, one that has used advisory locks (which outlive
// transactions), or one running a statement — unless both are pure reads,
// which never wait for each other. When none could, the server need not
// be asked.
func (o *ordered) mayBlock(os *orderedSession) bool {
	pure := os.cur != nil && os.cur.pure
	for _, other := range o.byID {
		if other == os {
			continue
		}
		if other.tx.Load() != 'I' || other.advisory.Load() || (other.cur != nil && !(pure && other.cur.pure)) {
			return true
		}
	}
	return false
}

// mayReleaseLocks reports whether a finished statement may have released
// locks other sessions wait for.
func mayReleaseLocks(s *replaySession, res *Result) bool {
	if s.conn == nil || s.conn.TxStatus() != 'T' || res.Status != StatusOK {
		return true // transaction ended (or never began), or failed, or connection gone
	}
	sql := strings.ToLower(res.SQL)
	return strings.Contains(sql, "rollback") || strings.Contains(sql, "release") || strings.Contains(sql, "unlock")
}

// admit starts op on its session once the rules allow (see above), or
// queues it behind the session's running statement if that one is blocked
// or op is a pure read.
func (o *ordered) admit(os *orderedSession, op *orderedOp) error {
	for o.ctx.Err() == nil {
		o.startReady()
		if len(o.ready) == 0 {
			switch {
			case os.cur == nil && len(o.running) == 0 && !op.overlap && !o.mayBlock(os):
				o.performInline(os, op)
				return nil
			case os.cur == nil && o.canStart(op):
				o.start(os, op)
				return nil
			case os.cur != nil && (os.blocked || op.pure && len(os.queue) < maxQueuedReads):
				// Behind a blocked statement, or a pure read behind whatever
				// its session runs: it starts when its turn comes (a later
				// impure event still waits for it, reads commute). The bound
				// keeps a stream of reads from being read ahead without end.
				os.queue = append(os.queue, op)
				return nil
			}
		}
		if err := o.waitOne(); err != nil {
			return err
		}
	}
	return nil
}

// drain waits until every session is idle.
func (o *ordered) drain() error {
	for o.ctx.Err() == nil {
		o.startReady()
		if len(o.running) == 0 {
			return nil
		}
		if err := o.waitOne(); err != nil {
			return err
		}
	}
	return nil
}

// canStart reports whether op may start now.
func (o *ordered) canStart(op *orderedOp) bool {
	for r := range o.running {
		if !r.blocked && !(op.pure && r.cur.pure) {
			return false
		}
	}
	return true
}

// startReady starts the queued operations of sessions whose running
// statement finished, in captured order, as far as the rules allow.
func (o *ordered) startReady() {
	if len(o.ready) == 0 {
		return
	}
	slices.SortFunc(o.ready, func(a, b *orderedSession) int { return cmp.Compare(a.queue[0].ev.Seq, b.queue[0].ev.Seq) })
	i := 0
	for ; i < len(o.ready); i++ {
		os := o.ready[i]
		op := os.queue[0]
		if !o.canStart(op) {
			break
		}
		os.queue[0] = nil
		os.queue = os.queue[1:]
		os.ready = false
		o.start(os, op)
	}
	o.ready = append(o.ready[:0], o.ready[i:]...)
}

func (o *ordered) start(os *orderedSession, op *orderedOp) {
	os.cur = op
	os.blocked = false
	os.checks = 0
	os.nextCheck = time.Now().Add(o.grace)
	o.running[os] = struct{}{}
	os.work <- op
}

// waitOne waits for an operation to finish or for a lock check to be due,
// and handles it.
func (o *ordered) waitOne() error {
	wait := o.nextCheckIn(time.Now())
	if wait <= 0 {
		return o.check()
	}
	o.timer.Reset(wait)
	select {
	case os := <-o.done:
		o.timer.Stop()
		o.complete(os)
		for drained := false; !drained; { // take every completion already there
			select {
			case os := <-o.done:
				o.complete(os)
			default:
				drained = true
			}
		}
	case <-o.timer.C:
	case <-o.ctx.Done():
		o.timer.Stop()
	}
	return nil
}

// complete handles a finished operation: invalidates blocked statuses when
// locks may have been released and makes the session's next queued
// operation ready.
func (o *ordered) complete(os *orderedSession) {
	op := os.cur
	os.cur = nil
	delete(o.running, os)
	if op.releases {
		now := time.Now()
		for r := range o.running {
			if r.blocked {
				r.blocked = false
				r.nextCheck = now
			}
		}
	}
	if len(os.queue) > 0 {
		os.ready = true
		o.ready = append(o.ready, os)
		return
	}
	if op.ev.Kind == KindDisconnect {
		o.retire(os)
	}
}

// retire ends a session whose disconnect is done: its worker exits.
func (o *ordered) retire(os *orderedSession) {
	os.gone = true
	close(os.work)
	if o.byID[os.s.id] == os {
		delete(o.byID, os.s.id)
	}
	o.compactOrder()
}

func (o *ordered) compactOrder() {
	if len(o.order) < 64 || len(o.order) < 2*len(o.byID) {
		return
	}
	o.order = slices.DeleteFunc(o.order, func(os *orderedSession) bool { return os.gone })
}

// nextCheckIn is how long until an unblocked running statement is due for a
// check (a very long time when all are known to be blocked).
func (o *ordered) nextCheckIn(now time.Time) time.Duration {
	wait := time.Hour
	for os := range o.running {
		if os.blocked {
			continue
		}
		wait = min(wait, os.nextCheck.Sub(now))
	}
	return wait
}

// check asks the server which running statements are blocked, and by whom.
func (o *ordered) check() error {
	now := time.Now()
	var due []*orderedSession
	var pids []string
	for os := range o.running {
		if os.blocked || os.nextCheck.After(now) {
			continue
		}
		pid := os.s.pid.Load()
		if pid == 0 || os.cur.ev.Kind != KindStatement || !o.mayBlock(os) {
			o.backoff(os, now) // connecting or closing, or nobody to wait for
			continue
		}
		due = append(due, os)
		pids = append(pids, strconv.FormatUint(uint64(pid), 10))
	}
	if len(due) == 0 {
		return nil
	}
	blockers, err := o.blockingPIDs("{" + strings.Join(pids, ",") + "}")
	if err != nil {
		return err
	}
	bySID := make(map[uint32]string, len(o.byID))
	for id, os := range o.byID {
		if pid := os.s.pid.Load(); pid != 0 {
			bySID[pid] = id
		}
	}
	now = time.Now()
	for _, os := range due {
		pid := os.s.pid.Load()
		var ids []string
		for _, b := range blockers[pid] {
			if id, ok := bySID[b]; ok && id != os.s.id && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			o.backoff(os, now)
			continue
		}
		slices.Sort(ids)
		os.blocked = true
		op := os.cur
		op.mu.Lock()
		if op.lockWait == nil {
			op.lockWait = &LockWait{BlockedBy: ids}
		} else {
			for _, id := range ids {
				if !slices.Contains(op.lockWait.BlockedBy, id) {
					op.lockWait.BlockedBy = append(op.lockWait.BlockedBy, id)
				}
			}
			slices.Sort(op.lockWait.BlockedBy)
		}
		op.mu.Unlock()
	}
	return nil
}

func (o *ordered) backoff(os *orderedSession, now time.Time) {
	os.checks++
	d := o.grace << min(os.checks, 16)
	os.nextCheck = now.Add(min(d, maxLockCheckInterval))
}

// blockingPIDs returns pg_blocking_pids() of each pid in the int4[] literal
// pids, reconnecting the monitor once if its connection broke.
func (o *ordered) blockingPIDs(pids string) (map[uint32][]uint32, error) {
	const name = "dbtwin_blocking_pids"
	var out map[uint32][]uint32
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if o.mon == nil || o.mon.IsClosed() {
			if o.mon, err = o.e.connectMonitor(o.ctx); err != nil {
				return nil, err
			}
		}
		out = map[uint32][]uint32{}
		rr := o.mon.ExecPrepared(o.ctx, name, [][]byte{[]byte(pids)}, nil, nil)
		for rr.NextRow() {
			v := rr.Values()
			pid, _ := strconv.ParseUint(string(v[0]), 10, 32)
			out[uint32(pid)] = replayParseInt4Array(v[1])
		}
		if _, err = rr.Close(); err == nil || o.ctx.Err() != nil {
			return out, nil
		}
	}
	return nil, fmt.Errorf("query pg_blocking_pids on the replay monitor connection: %w", err)
}

// replayParseInt4Array parses the text form of an int4[] ("{1,2}").
func replayParseInt4Array(b []byte) []uint32 {
	s := strings.Trim(string(b), "{}")
	if s == "" {
		return nil
	}
	var out []uint32
	for f := range strings.SplitSeq(s, ",") {
		if n, err := strconv.ParseUint(f, 10, 32); err == nil {
			out = append(out, uint32(n))
		}
	}
	return out
}

// shutdown stops the workers and closes the monitor.
func (o *ordered) shutdown() {
	close(o.quit)
	for _, os := range o.order {
		if !os.gone {
			os.gone = true
			close(os.work)
		}
	}
	o.workers.Wait()
	if o.mon != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = o.mon.Close(ctx)
		cancel()
	}
}
