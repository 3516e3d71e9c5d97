package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// e2eSetup is the starting database every copy is made from.
const e2eSetup = `
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL, updated timestamptz);
INSERT INTO accounts SELECT g, 'owner-' || g, g * 100, '2025-01-01 00:00:00+00'::timestamptz + g * interval '1 hour'
  FROM generate_series(1, 20) g;
CREATE TABLE notes (id serial PRIMARY KEY, account int REFERENCES accounts, body text, amount numeric, at timestamptz);
INSERT INTO notes (account, body, amount, at) VALUES
  (1, 'first', 1.5, '2025-01-01 00:00:00+00'), (2, E'two\nlines', NULL, NULL);
CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL, payload jsonb);
`

// e2eOutcome is what one statement returned: to the client in the
// original run, or to the replay engine (see e2eFromResult). Rows are
// hashed as the engine hashes them (RowHasher over the text-format values,
// each row with the index of its result in a multi-statement string); the
// hashes are set when the statement returned a row set or rows.
type e2eOutcome struct {
	SQL      string
	SQLState string
	Rows     int64
	Ordered  string
	Multiset string
}

// String renders the outcome for comparison. A statement that failed
// before its first row is "error=STATE" whether or not a row set had been
// announced: the engine asks for one (Describe) and hashes the empty set,
// while pgx executing a statement it has cached sends no Describe and
// never learns of one.
func (o e2eOutcome) String() string {
	if o.SQLState != "" && o.Rows == 0 {
		o.Ordered, o.Multiset = "", ""
	}
	s := fmt.Sprintf("%q", o.SQL)
	if o.SQLState != "" {
		s += " error=" + o.SQLState
	}
	if o.Ordered != "" {
		s += fmt.Sprintf(" rows=%d ordered=%.8s multiset=%.8s", o.Rows, o.Ordered, o.Multiset)
	}
	return s
}

func e2eFromResult(r *Result) e2eOutcome {
	o := e2eOutcome{SQL: r.SQL, SQLState: r.SQLState, Rows: r.Rows, Ordered: r.OrderedHash, Multiset: r.MultisetHash}
	if r.Status == StatusError && o.SQLState == "" {
		o.SQLState = "?" + r.Message
	}
	if r.Status != StatusOK && r.Status != StatusError {
		o.SQLState = string(r.Status) + ":" + r.Message
	}
	return o
}

// e2eLive records what the clients of the original run got, per session
// (by application_name), in the order each session ran its statements.
type e2eLive struct {
	t  *testing.T
	mu sync.Mutex
	by map[string][]e2eOutcome
}

// e2eClient is one client session of the original run.
type e2eClient struct {
	app  string
	conn *pgx.Conn
	live *e2eLive
}

func (c *e2eClient) record(o e2eOutcome, want string) {
	c.live.mu.Lock()
	c.live.by[c.app] = append(c.live.by[c.app], o)
	c.live.mu.Unlock()
	if o.SQLState != want {
		// Errorf, not Fatalf: this may run on another goroutine.
		c.live.t.Errorf("original run, %s: %q got SQLSTATE %q, the workload expects %q", c.app, o.SQL, o.SQLState, want)
	}
}

func (c *e2eClient) state(err error) string {
	if err == nil {
		return ""
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return "client error: " + err.Error()
}

// simple runs a query string through the simple protocol, reading every
// result the way the replay engine does.
func (c *e2eClient) simple(ctx context.Context, want, sql string) {
	h := NewRowHasher()
	mrr := c.conn.PgConn().Exec(ctx, sql)
	cols := false
	for idx := 0; mrr.NextResult(); idx++ {
		rr := mrr.ResultReader()
		cols = cols || len(rr.FieldDescriptions()) > 0
		for rr.NextRow() {
			h.Add(idx, rr.Values())
		}
		_, _ = rr.Close()
	}
	err := mrr.Close()
	c.record(e2eHashed(sql, c.state(err), cols, h), want)
}

// query runs a statement through pgx's extended protocol (the connection's
// exec mode: a cached named statement, or the unnamed one), asking for
// text-format results so the rows can be hashed like the engine's.
func (c *e2eClient) query(ctx context.Context, want, sql string, args ...any) {
	c.run(ctx, want, sql, sql, args...)
}

// named executes the prepared statement name, whose text is sql.
func (c *e2eClient) named(ctx context.Context, name, sql string, args ...any) {
	c.run(ctx, "", name, sql, args...)
}

func (c *e2eClient) run(ctx context.Context, want, query, sql string, args ...any) {
	h := NewRowHasher()
	cols := false
	rows, err := c.conn.Query(ctx, query, append([]any{pgx.QueryResultFormats{pgx.TextFormatCode}}, args...)...)
	if err == nil {
		cols = len(rows.FieldDescriptions()) > 0
		for rows.Next() {
			h.Add(0, rows.RawValues())
		}
		rows.Close()
		err = rows.Err()
	}
	c.record(e2eHashed(sql, c.state(err), cols, h), want)
}

func e2eHashed(sql, state string, cols bool, h *RowHasher) e2eOutcome {
	o := e2eOutcome{SQL: sql, SQLState: state, Rows: h.Rows()}
	if cols || h.Rows() > 0 {
		o.Ordered, o.Multiset = h.Ordered(), h.Multiset()
	}
	return o
}

// begin, commit and rollback go through pgx's transaction API, which
// sends "begin" and "commit"/"rollback" through the simple protocol.
func (c *e2eClient) begin(ctx context.Context) pgx.Tx {
	tx, err := c.conn.Begin(ctx)
	c.record(e2eOutcome{SQL: "begin", SQLState: c.state(err)}, "")
	return tx
}

func (c *e2eClient) commit(ctx context.Context, tx pgx.Tx) {
	c.record(e2eOutcome{SQL: "commit", SQLState: c.state(tx.Commit(ctx))}, "")
}

func (c *e2eClient) rollback(ctx context.Context, tx pgx.Tx) {
	c.record(e2eOutcome{SQL: "rollback", SQLState: c.state(tx.Rollback(ctx))}, "")
}

// e2eConnect opens a client session through the proxy, with the session
// settings the replay engine pins (so the text of timestamps, numbers and
// bytea the client gets is what a replay gets).
func e2eConnect(ctx context.Context, t *testing.T, dsn, app string, mode pgx.QueryExecMode, live *e2eLive) *e2eClient {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"application_name": app, "TimeZone": "UTC", "DateStyle": "ISO, MDY", "IntervalStyle": "postgres",
		"extra_float_digits": "1", "bytea_output": "hex",
	} {
		cfg.RuntimeParams[k] = v
	}
	cfg.DefaultQueryExecMode = mode
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &e2eClient{app: app, conn: conn, live: live}
}

// e2eWorkload is the original run: four sessions, interleaved from this
// goroutine (so the captured order is the order things happened), except
// for one UPDATE that waits for another session's row lock.
//
//	A  simple protocol (PgConn().Exec), multi-statement and multi-line strings
//	B  extended protocol, pgx's cached named statements (Parse/Describe once)
//	C  extended protocol, the unnamed statement (QueryExecModeExec), and a
//	   named prepared statement executed twice
//	D  extended protocol; its UPDATE waits for A's COMMIT
func e2eWorkload(ctx context.Context, t *testing.T, c *local.Cluster, dsn string, live *e2eLive) {
	a := e2eConnect(ctx, t, dsn, "e2e-A", pgx.QueryExecModeSimpleProtocol, live)
	b := e2eConnect(ctx, t, dsn, "e2e-B", pgx.QueryExecModeCacheStatement, live)
	cc := e2eConnect(ctx, t, dsn, "e2e-C", pgx.QueryExecModeExec, live)
	d := e2eConnect(ctx, t, dsn, "e2e-D", pgx.QueryExecModeCacheStatement, live)
	ts := time.Date(2025, 3, 4, 5, 6, 7, 890000000, time.UTC)

	a.simple(ctx, "", "UPDATE accounts SET balance = balance + 1 WHERE id <= 5")
	b.query(ctx, "", "SELECT id, owner, balance, updated FROM accounts WHERE id = $1 OR owner = $2 ORDER BY id", 3, "owner-7")
	a.simple(ctx, "", "INSERT INTO notes (account, body) VALUES (3, 'from A');\nSELECT id, account, body\n  FROM notes\n ORDER BY id")
	cc.query(ctx, "", "INSERT INTO notes (account, body, amount, at)\nVALUES ($1, $2, $3, $4)\nRETURNING id, body, amount, at",
		4, "it's a \"quote\"\nand a newline\twith a tab", 12.5, ts)
	cc.query(ctx, "", "INSERT INTO notes (account, body, amount, at)\nVALUES ($1, $2, $3, $4)\nRETURNING id, body, amount, at",
		5, nil, nil, nil)

	// a committed transaction, extended protocol
	tx := b.begin(ctx)
	b.query(ctx, "", "UPDATE accounts SET balance = balance - $1, updated = $2 WHERE id = $3", 25.75, ts, 6)
	b.query(ctx, "", "INSERT INTO events (kind, payload) VALUES ($1, $2) RETURNING id, kind, payload", "debit", map[string]any{"account": 6, "amount": "25.75", "note": "it's"})
	b.commit(ctx, tx)

	// an error inside a transaction, simple protocol: the statements after
	// it get 25P02 until the ROLLBACK
	a.simple(ctx, "", "BEGIN")
	a.simple(ctx, "", "UPDATE accounts SET balance = balance * 2 WHERE id = 10")
	a.simple(ctx, "23505", "INSERT INTO accounts (id, owner, balance) VALUES (1, 'dup', 0)")
	a.simple(ctx, "25P02", "SELECT count(*) FROM accounts")
	a.simple(ctx, "25P02", "UPDATE accounts SET balance = 0 WHERE id = 11")
	a.simple(ctx, "", "ROLLBACK")

	// an error inside a transaction, extended protocol: a Bind of a cached
	// statement and a Parse of a new one both fail with 25P02
	b.query(ctx, "", "SELECT body FROM notes WHERE id = $1", 1)
	tx = b.begin(ctx)
	b.query(ctx, "", "UPDATE notes SET amount = $1 WHERE id = $2", 99, 2)
	// (fails while it executes: a statement that fails in Bind, such as
	// "SELECT 10 / $1::int" with 0, has no parameters in a log written
	// under log_statement=all, so no log reader can replay it faithfully)
	b.query(ctx, "22012", "SELECT 10 / (balance - $1) FROM accounts WHERE id = $2", 700, 7)
	b.query(ctx, "25P02", "SELECT body FROM notes WHERE id = $1", 1)
	b.query(ctx, "25P02", "DELETE FROM notes WHERE id = $1", 2)
	b.rollback(ctx, tx)

	// a savepoint that recovers from an error
	cc.simple(ctx, "", "BEGIN")
	cc.query(ctx, "", "INSERT INTO events (kind, payload) VALUES ($1, $2)", "credit", `{"n": 1}`)
	cc.simple(ctx, "", "SAVEPOINT s1")
	cc.query(ctx, "23503", "INSERT INTO notes (account, body) VALUES ($1, $2)", 999, "no such account")
	cc.simple(ctx, "", "ROLLBACK TO SAVEPOINT s1")
	cc.query(ctx, "", "INSERT INTO notes (account, body) VALUES ($1, $2)", 7, "after savepoint")
	cc.simple(ctx, "", "COMMIT")

	// a named prepared statement, executed twice (once finding nothing)
	if _, err := cc.conn.Prepare(ctx, "acct", "SELECT owner, balance, updated\n  FROM accounts\n WHERE id = $1"); err != nil {
		t.Fatal(err)
	}
	cc.named(ctx, "acct", "SELECT owner, balance, updated\n  FROM accounts\n WHERE id = $1", 6)
	cc.named(ctx, "acct", "SELECT owner, balance, updated\n  FROM accounts\n WHERE id = $1", 21)

	// a lock wait: D's UPDATE of row 2 starts while A's transaction holds
	// it, so it is captured before A's COMMIT
	a.simple(ctx, "", "BEGIN")
	a.simple(ctx, "", "UPDATE accounts SET balance = balance + 1000 WHERE id = 2")
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.query(ctx, "", "UPDATE accounts SET balance = balance * 3 WHERE id = $1 RETURNING id, balance", 2)
	}()
	e2eWaitLocked(ctx, t, c, "e2e-D", done)
	a.simple(ctx, "", "COMMIT")
	<-done
	d.query(ctx, "", "SELECT balance FROM accounts WHERE id = $1", 2)

	// DDL, then rows through both protocols
	a.simple(ctx, "", "CREATE TABLE audit (\n  id int,\n  note text\n)")
	a.simple(ctx, "", "INSERT INTO audit SELECT id, owner FROM accounts WHERE id < 4")
	d.query(ctx, "", "INSERT INTO audit VALUES ($1, $2), ($3, $4)", 100, "d's row", 101, nil)

	// reads without ORDER BY, and errors outside transactions
	a.simple(ctx, "", "SELECT id, owner FROM accounts WHERE balance > 500")
	b.query(ctx, "", "SELECT account, count(*) FROM notes GROUP BY account")
	cc.query(ctx, "", "SELECT sum(balance), min(updated), max(updated) FROM accounts")
	b.query(ctx, "42P01", "SELECT * FROM no_such_table WHERE id = $1", 1)
	a.simple(ctx, "42601", "SELEC 1")

	// the final state, as every session sees it
	a.simple(ctx, "", "SELECT * FROM accounts ORDER BY id;\nSELECT * FROM notes ORDER BY id")
	b.query(ctx, "", "SELECT * FROM events ORDER BY id")
	d.query(ctx, "", "SELECT * FROM audit ORDER BY id, note")

	for _, cl := range []*e2eClient{a, b, cc, d} {
		if err := cl.conn.Close(ctx); err != nil {
			t.Errorf("close %s: %v", cl.app, err)
		}
	}
}

// e2eWaitLocked waits until the session of application app waits for a
// lock (and fails the test if its statement finishes first).
func e2eWaitLocked(ctx context.Context, t *testing.T, c *local.Cluster, app string, done <-chan struct{}) {
	t.Helper()
	conn, err := c.Conn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(30 * time.Second); ; {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-done:
			t.Fatalf("%s's statement finished without waiting for the lock", app)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never waited for a lock", app)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// e2eSource is one capture of the original run.
type e2eSource struct {
	name, path, target string
	format             Format
	hasState           bool // the source records SQLSTATEs
}

// TestCaptureAndReplayAgree is the end-to-end check of capture and replay:
// one server logs in stderr, csvlog and jsonlog at once (log_statement=all),
// and the capture proxy sits in front of it. A workload of four pgx
// sessions (simple and extended protocol, a named prepared statement,
// parameters of several types including NULL and text with quotes and
// newlines, committed transactions, errors inside transactions with the
// 25P02s that follow them, a savepoint, multi-line and multi-statement SQL,
// a lock wait) runs through the proxy on a copy of the starting database,
// and every client records what it got. Each of the four captures (three
// logs read by the log readers, the proxy's JSONL) is replayed in ordered
// mode into a fresh copy of the starting database, and:
//
//   - each replay ran, session by session, the same statements in the
//     same order, with the same outcome (SQLSTATE, row count, ordered and
//     multiset hash of the rows) as the client got;
//   - the four replays agree with each other, statement by statement;
//   - every table (and sequence) ends the same in each replay database as
//     in the original.
func TestCaptureAndReplayAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const logDir = "e2e-log"
	c := localtest.Start(t, localtest.WithTCP, func(cfg *local.Config) {
		cfg.Settings = map[string]string{
			"logging_collector":  "on",
			"log_destination":    "stderr,csvlog,jsonlog",
			"log_directory":      logDir, // relative: inside the data directory
			"log_filename":       "postgresql.log",
			"log_rotation_age":   "0",
			"log_rotation_size":  "0",
			"log_line_prefix":    "%m [%p] %q%u@%d ",
			"log_statement":      "all",
			"log_connections":    "on",
			"log_disconnections": "on",
			"log_min_messages":   "warning",
			"lc_messages":        "C",
		}
	})
	if err := c.CreateDatabase(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	engExecSQL(t, c, "start", e2eSetup)
	sources := []e2eSource{
		{name: "stderr", target: "replay_log_stderr", format: FormatStderr},
		{name: "csvlog", target: "replay_log_csv", format: FormatCSVLog, hasState: true},
		{name: "jsonlog", target: "replay_log_json", format: FormatJSONLog, hasState: true},
		{name: "proxy", target: "replay_proxy", format: FormatJSONL, hasState: true},
	}
	for _, db := range []string{"orig", sources[0].target, sources[1].target, sources[2].target, sources[3].target} {
		if err := c.CreateDatabaseFromTemplate(ctx, db, "start"); err != nil {
			t.Fatal(err)
		}
	}

	// The original run, through the proxy: the server logs it and the
	// proxy records it.
	pr := pxStartProxy(t, c.DSN("postgres"))
	live := &e2eLive{t: t, by: map[string][]e2eOutcome{}}
	start := time.Now()
	e2eWorkload(ctx, t, c, pr.dsn(t, c.TCPDSN("orig"), "orig"), live)
	if t.Failed() {
		t.FailNow()
	}
	pr.stop(t)
	if st := pr.p.Stats(); st.Sessions != 4 || st.Skipped != 0 {
		t.Errorf("proxy: %+v, want 4 sessions and nothing skipped", st)
	}
	t.Logf("original run: %v", time.Since(start).Round(time.Millisecond))

	// Snapshot the captures: the logs up to a marker (the replays log
	// too), the proxy's JSONL.
	dir := t.TempDir()
	if keep := os.Getenv("DBTWIN_E2E_KEEP"); keep != "" { // to look at them
		dir = keep
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := c.Conn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	files, marker := flushLogsIn(ctx, t, c, admin, logDir)
	admin.Close(ctx)
	for name, src := range map[string]string{"stderr": files["log"], "csvlog": files["csv"], "jsonlog": files["json"]} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		// Up to the end of the marker's line: what follows may be a line
		// the collector is writing right now.
		if k := bytes.Index(b, []byte(marker)); k >= 0 {
			if nl := bytes.IndexByte(b[k:], '\n'); nl >= 0 {
				b = b[:k+nl+1]
			}
		}
		p := filepath.Join(dir, "postgresql-"+name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		for j := range sources {
			if sources[j].name == name {
				sources[j].path = p
			}
		}
	}
	sources[3].path = filepath.Join(dir, "proxy.jsonl")
	if err := os.WriteFile(sources[3].path, pr.out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	var apps []string
	for app := range live.by {
		apps = append(apps, app)
	}
	slices.Sort(apps)
	liveTotal := 0
	for _, app := range apps {
		liveTotal += len(live.by[app])
	}

	// Replay each capture and compare with what the clients got.
	replays := map[string]map[string][]*Result{} // source → app → results in seq order
	for _, src := range sources {
		start := time.Now()
		byApp := e2eReplay(ctx, t, c, src)
		t.Logf("%s: replayed %d statements in %v", src.name, e2eCount(byApp), time.Since(start).Round(time.Millisecond))
		replays[src.name] = byApp
		for _, app := range apps {
			want := live.by[app]
			got := byApp[app]
			var diffs []string
			for i := range max(len(want), len(got)) {
				var w, g string
				if i < len(want) {
					w = want[i].String()
				}
				if i < len(got) {
					g = e2eFromResult(got[i]).String()
					if i < len(want) {
						e2eCheckCaptured(t, src, app, i, got[i], want[i])
					}
				}
				if w != g {
					diffs = append(diffs, fmt.Sprintf("  #%d\n    original %s\n      replay %s", i+1, w, g))
				}
			}
			if len(diffs) > 0 {
				t.Errorf("%s, session %s: the replay differs from the original run in %d of %d statements:\n%s",
					src.name, app, len(diffs), len(want), strings.Join(diffs, "\n"))
			}
		}
		for app := range byApp {
			if _, ok := live.by[app]; !ok {
				t.Errorf("%s: replayed a session %q the original run did not have", src.name, app)
			}
		}
	}

	// The four replays agree with each other, result by result (except
	// what describes the replay rather than the statement).
	ref := sources[0].name
	for _, src := range sources[1:] {
		for _, app := range apps {
			a, b := replays[ref][app], replays[src.name][app]
			if len(a) != len(b) {
				t.Errorf("session %s: %s replayed %d statements, %s %d", app, ref, len(a), src.name, len(b))
			}
			for i := range min(len(a), len(b)) {
				if x, y := e2eComparable(a[i]), e2eComparable(b[i]); !reflect.DeepEqual(x, y) {
					t.Errorf("session %s #%d: the %s and %s replays differ:\n%+v\n%+v", app, i+1, ref, src.name, x, y)
				}
			}
		}
	}

	// Every table ends the same.
	want := e2eDigests(ctx, t, c, "orig")
	for _, src := range sources {
		got := e2eDigests(ctx, t, c, src.target)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: final contents differ from the original run's\n  original %v\n    replay %v", src.name, want, got)
		}
	}
	t.Logf("%d sessions, %d statements; tables %v", len(apps), liveTotal, slices.Sorted(maps.Keys(want)))
}

func e2eCount(m map[string][]*Result) int {
	n := 0
	for _, rs := range m {
		n += len(rs)
	}
	return n
}

// e2eCheckCaptured checks the error a source captured for a statement
// against what the client got: the SQLSTATE where the source records it,
// that there was one otherwise.
func e2eCheckCaptured(t *testing.T, src e2eSource, app string, i int, r *Result, live e2eOutcome) {
	t.Helper()
	got := ""
	if r.Captured != nil {
		got = r.Captured.SQLState
		if got == "" {
			got = "?"
		}
	}
	want := live.SQLState
	if !src.hasState && want != "" {
		want = "?"
	}
	if got != want {
		t.Errorf("%s, session %s #%d %q: captured error %+v, the client got %q", src.name, app, i+1, r.SQL, r.Captured, live.SQLState)
	}
}

// e2eReplay reads a capture (checking its reader reports nothing wrong),
// replays it in ordered mode into src.target straight from the file, and
// returns the results by session application, in captured order.
func e2eReplay(ctx context.Context, t *testing.T, c *local.Cluster, src e2eSource) map[string][]*Result {
	t.Helper()
	opts := ReaderOptions{Format: src.format, Filter: Filter{Databases: []string{"orig"}}}
	// First pass: which captured session is which client.
	r, err := Open(ctx, src.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	appOf := map[string]string{}
	for r.Next() {
		ev := r.Event()
		if ev.Kind == KindConnect || ev.Application != "" {
			appOf[ev.Session] = ev.Application
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	r.Close()
	if st.Format != src.format {
		t.Errorf("%s: read as %s", src.name, st.Format)
	}
	if st.WarningCount > 0 {
		t.Errorf("%s: %d reader warnings: %v", src.name, st.WarningCount, st.Warnings)
	}
	// (An error without statement is the readiness probe's "the database
	// system is starting up" when the cluster started; missed statements
	// of the workload show up in the comparison.)
	for reason, n := range st.Skipped {
		switch reason {
		case SkipOther, SkipFiltered, SkipParseBind, SkipBackground, SkipErrorNoStatement:
		default:
			t.Errorf("%s: reader skipped %d records: %s", src.name, n, reason)
		}
	}

	// Second pass: replay from the file.
	r, err = Open(ctx, src.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var buf bytes.Buffer
	w, err := NewResultsWriter(&buf, ResultsHeader{Mode: ModeOrdered})
	if err != nil {
		t.Fatal(err)
	}
	est, err := Replay(ctx, r, c.DSN(src.target), EngineOptions{Mode: ModeOrdered}, w)
	if cerr := w.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatalf("%s: replay: %v", src.name, err)
	}
	if est.Timeouts+est.ConnLost+est.Skipped > 0 {
		t.Errorf("%s: replay stats %+v", src.name, est)
	}
	if est.LockWaits == 0 {
		t.Errorf("%s: no lock wait recorded; D's UPDATE should have waited for A's COMMIT", src.name)
	}
	byApp := map[string][]*Result{}
	for _, res := range engReadResults(t, buf.Bytes()) {
		app, ok := appOf[res.Session]
		if !ok {
			t.Errorf("%s: result of session %s, which has no application", src.name, res.Session)
		}
		byApp[app] = append(byApp[app], res)
	}
	return byApp
}

// e2eComparable is a result without what describes the replay rather than
// the statement (duration, lock waits), where the capture came from
// (session ids and seqs) or what the capture knew (the captured error:
// stderr logs without %e have no SQLSTATE).
func e2eComparable(r *Result) Result {
	c := *r
	c.Session, c.Seq, c.Duration, c.LockWait, c.Captured = "", 0, 0, nil, nil
	return c
}

// e2eDigests checksums every user table (its rows in order) and sequence
// (its last value) of db.
func e2eDigests(ctx context.Context, t *testing.T, c *local.Cluster, db string) map[string]string {
	t.Helper()
	conn, err := c.Conn(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables []string
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tb := range tables {
		var n int64
		var sum *string
		q := fmt.Sprintf("SELECT count(*), md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM %s t", pgx.Identifier{tb}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		d := fmt.Sprintf("%d rows", n)
		if sum != nil {
			d += " " + *sum
		}
		out[tb] = d
	}
	var seqs *string
	if err := conn.QueryRow(ctx, "SELECT string_agg(sequencename || '=' || coalesce(last_value::text, '-'), ',' ORDER BY sequencename) FROM pg_sequences WHERE schemaname = 'public'").Scan(&seqs); err != nil {
		t.Fatal(err)
	}
	if seqs != nil {
		out["(sequences)"] = *seqs
	}
	return out
}

// flushLogsIn writes a marker and waits until the logging collector has
// written it to the stderr log, the csvlog and the jsonlog in dir (under
// the data directory), and returns their paths by kind (log, csv, json)
// and the marker.
func flushLogsIn(ctx context.Context, t *testing.T, c *local.Cluster, admin *pgx.Conn, dir string) (map[string]string, string) {
	t.Helper()
	marker := fmt.Sprintf("e2e marker %d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "SELECT '"+marker+"'", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(c.Record().DataDir(), dir, "postgresql.")
	files := map[string]string{"log": base + "log", "csv": base + "csv", "json": base + "json"}
	deadline := time.Now().Add(30 * time.Second)
	for _, f := range files {
		for {
			b, _ := os.ReadFile(f)
			if bytes.Contains(b, []byte(marker)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never got the marker %q", f, marker)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return files, marker
}
