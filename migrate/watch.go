package migrate

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// relLock is one granted relation lock as pg_locks shows it.
type relLock struct {
	oid  uint32
	mode LockMode
	name string // "" when the catalog row is not visible to the reader
	kind string
}

// locksSQL reads the granted relation locks of user relations in the
// current database (system catalogs, with OIDs below 16384, and TOAST
// tables left out). The pid condition is appended by the caller.
const locksSQL = `SELECT l.relation, l.mode,
       coalesce(CASE WHEN n.nspname = 'public' THEN c.relname::text ELSE n.nspname || '.' || c.relname END, ''),
       coalesce(c.relkind::text, '')
FROM pg_locks l
LEFT JOIN pg_class c ON c.oid = l.relation
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.locktype = 'relation' AND l.granted AND l.relation >= 16384
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND coalesce(c.relkind, 'r') <> 't' AND coalesce(n.nspname, '') NOT LIKE 'pg\_toast%'
  AND `

func readLocks(ctx context.Context, conn *pgx.Conn, pidCond string, args ...any) ([]relLock, error) {
	var out []relLock
	err := scanRowsArgs(ctx, conn, locksSQL+pidCond, args, func(r pgx.Rows) error {
		var l relLock
		var mode, kind string
		if err := r.Scan(&l.oid, &mode, &l.name, &kind); err != nil {
			return err
		}
		l.mode, l.kind = lockModeFromPG(mode), relKind(kind)
		out = append(out, l)
		return nil
	})
	return out, err
}

func relKind(k string) string {
	switch k {
	case "r":
		return "table"
	case "p":
		return "partitioned table"
	case "i", "I":
		return "index"
	case "S":
		return "sequence"
	case "v":
		return "view"
	case "m":
		return "materialized view"
	case "f":
		return "foreign table"
	}
	return ""
}

func scanRowsArgs(ctx context.Context, conn *pgx.Conn, sql string, args []any, fn func(pgx.Rows) error) error {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// lockEntry is one lock mode a statement took on a relation.
type lockEntry struct {
	stmt     int
	oid      uint32
	mode     LockMode
	samples  int
	first    time.Time // first sample that saw it (zero: only the own check)
	last     time.Time
	own      bool      // the session's own check saw it: held to the end of the transaction
	txEnd    int       // statement after which its transaction ended, -1 if not (yet)
	released time.Time // first sample that no longer saw it, for a lock released early
}

// lockTracker turns lock observations of one migration into per-statement
// LockHeld records. The watcher goroutine and the migrating goroutine both
// feed it.
type lockTracker struct {
	mu      sync.Mutex
	cur     int // statement running, -1 between statements
	entries []*lockEntry
	open    map[uint32][]*lockEntry
	names   map[uint32]relLock
	durs    map[int]time.Duration
	commit  map[int]time.Duration
}

func newLockTracker() *lockTracker {
	return &lockTracker{cur: -1, open: map[uint32][]*lockEntry{}, names: map[uint32]relLock{}, durs: map[int]time.Duration{}, commit: map[int]time.Duration{}}
}

func (t *lockTracker) current() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

// begin marks statement i as running.
func (t *lockTracker) begin(i int) {
	t.mu.Lock()
	t.cur = i
	t.mu.Unlock()
}

// end records statement i's execution time; samples taken from now on
// until the next begin are ignored (only dbtwin's probes run then).
func (t *lockTracker) end(i int, d time.Duration) {
	t.mu.Lock()
	t.cur = -1
	t.durs[i] += d
	t.mu.Unlock()
}

// sample records a watcher sample taken at time at while statement i ran;
// it is dropped when the statement changed in the meantime.
func (t *lockTracker) sample(i int, at time.Time, locks []relLock) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur != i || i < 0 {
		return
	}
	seen := t.strongest(locks)
	for oid, mode := range seen {
		t.observe(i, oid, mode, at, true)
	}
	for oid, list := range t.open {
		if _, ok := seen[oid]; ok {
			continue
		}
		keep := list[:0]
		for _, e := range list {
			if e.own {
				keep = append(keep, e)
				continue
			}
			e.released = at
		}
		if len(keep) == 0 {
			delete(t.open, oid)
		} else {
			t.open[oid] = keep
		}
	}
}

// own records the migrating session's own locks after statement i.
func (t *lockTracker) own(i int, locks []relLock) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for oid, mode := range t.strongest(locks) {
		t.observe(i, oid, mode, time.Time{}, false)
		for _, e := range t.open[oid] {
			e.own = true
		}
	}
}

// txEnd records that the transaction ended after statement i, its COMMIT
// (or ROLLBACK) taking d: every lock still held is released.
func (t *lockTracker) txEnd(i int, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.commit[i] += d
	for oid, list := range t.open {
		for _, e := range list {
			e.txEnd = i
		}
		delete(t.open, oid)
	}
}

func (t *lockTracker) strongest(locks []relLock) map[uint32]LockMode {
	m := map[uint32]LockMode{}
	for _, l := range locks {
		if l.name != "" {
			t.names[l.oid] = l
		} else if _, ok := t.names[l.oid]; !ok {
			t.names[l.oid] = relLock{oid: l.oid}
		}
		m[l.oid] = strongest(m[l.oid], l.mode)
	}
	return m
}

func (t *lockTracker) observe(i int, oid uint32, mode LockMode, at time.Time, sampled bool) {
	var top *lockEntry
	for _, e := range t.open[oid] {
		if top == nil || e.mode.Rank() > top.mode.Rank() {
			top = e
		}
	}
	if top == nil || mode.Rank() > top.mode.Rank() {
		top = &lockEntry{stmt: i, oid: oid, mode: mode, first: at, txEnd: -1}
		t.entries = append(t.entries, top)
		t.open[oid] = append(t.open[oid], top)
	}
	if sampled {
		top.samples++
		if top.first.IsZero() {
			top.first = at
		}
		top.last = at
	}
}

// result returns the locks of each statement, strongest first, one per
// relation name. known lists the relations that existed before the run:
// they name relations dropped since, and a relation neither known nor ever
// named is a transient one PostgreSQL created and dropped inside the
// statement (the new heap of a rewrite), which is left out. Two
// incarnations of one name (an index rebuilt by ALTER … TYPE) merge.
func (t *lockTracker) result(known map[uint32]relInfo) map[int][]LockHeld {
	t.mu.Lock()
	defer t.mu.Unlock()
	type key struct {
		stmt int
		name string
	}
	best := map[key]*LockHeld{}
	var order []key
	for _, e := range t.entries {
		var held time.Duration
		switch {
		case e.txEnd >= 0:
			for s := e.stmt; s <= e.txEnd; s++ {
				held += t.durs[s]
			}
			held += t.commit[e.txEnd]
		case !e.released.IsZero():
			held = e.released.Sub(e.first)
		case !e.last.IsZero():
			held = e.last.Sub(e.first)
		}
		info := t.names[e.oid]
		old, existed := known[e.oid]
		name, kind := info.name, info.kind
		if name == "" {
			if !existed {
				continue
			}
			name, kind = old.name, old.kind
		}
		k := key{e.stmt, name}
		lh := best[k]
		if lh == nil {
			lh = &LockHeld{Relation: name, Kind: kind, Created: !existed}
			best[k] = lh
			order = append(order, k)
		}
		lh.Created = lh.Created && !existed
		if e.mode.Rank() > lh.Mode.Rank() {
			lh.Mode = e.mode
		}
		lh.Held = max(lh.Held, held)
		lh.Samples += e.samples
	}
	out := map[int][]LockHeld{}
	for _, k := range order {
		out[k.stmt] = append(out[k.stmt], *best[k])
	}
	for _, ls := range out {
		sort.Slice(ls, func(i, j int) bool {
			if ls[i].Mode.Rank() != ls[j].Mode.Rank() {
				return ls[i].Mode.Rank() > ls[j].Mode.Rank()
			}
			return ls[i].Relation < ls[j].Relation
		})
	}
	return out
}

// watcher samples pg_locks on its own connection while migrations run.
type watcher struct {
	conn     *pgx.Conn
	pidCond  string
	args     []any
	interval time.Duration
	log      *slog.Logger

	mu       sync.Mutex
	tr       *lockTracker
	samples  int
	failures int

	cancel context.CancelFunc
	done   chan struct{}
}

// startWatcher connects to dsn and samples the locks of the backends pids
// (or, with exclude, of every backend of the database but pids and the
// watcher itself) every interval.
func startWatcher(ctx context.Context, dsn string, pids []uint32, exclude bool, interval time.Duration, log *slog.Logger) (*watcher, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect lock watcher: %w", err)
	}
	w := &watcher{conn: conn, interval: interval, log: log, done: make(chan struct{})}
	if exclude {
		// Client backends only: autovacuum's locks are not the command's.
		w.pidCond = "l.pid <> ALL($1) AND l.pid <> pg_backend_pid() AND l.pid IN (SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend')"
	} else {
		w.pidCond = "l.pid = ANY($1)"
	}
	w.args = []any{pids}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.cancel = cancel
	go w.loop(wctx)
	return w, nil
}

// track points the watcher at the tracker of the migration now running.
func (w *watcher) track(tr *lockTracker) {
	w.mu.Lock()
	w.tr = tr
	w.mu.Unlock()
}

func (w *watcher) loop(ctx context.Context) {
	defer close(w.done)
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		w.mu.Lock()
		tr := w.tr
		w.mu.Unlock()
		if tr == nil {
			continue
		}
		i := tr.current()
		if i < 0 {
			continue
		}
		at := time.Now()
		locks, err := readLocks(ctx, w.conn, w.pidCond, w.args...)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.failures++
			first := w.failures == 1
			w.mu.Unlock()
			if first {
				w.log.Warn("lock watcher: sample pg_locks", "err", err)
			}
			continue
		}
		w.mu.Lock()
		w.samples++
		w.mu.Unlock()
		tr.sample(i, at, locks)
	}
}

// stop ends sampling and closes the watcher's connection.
func (w *watcher) stop() {
	w.cancel()
	<-w.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = w.conn.Close(ctx)
	w.log.Debug("lock watcher stopped", "samples", w.samples, "failures", w.failures)
}
