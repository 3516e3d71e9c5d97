package replay

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const engAcctSetup = `
CREATE TABLE acct (id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL, note text);
INSERT INTO acct SELECT g, 'owner' || g, 100, CASE WHEN g % 3 = 0 THEN NULL ELSE '' END FROM generate_series(1, 50) g;
CREATE TABLE ledger (id serial PRIMARY KEY, acct int NOT NULL, delta numeric NOT NULL);
`

// engAcctWorkload exercises what ordered replay must get right: a lock wait
// that production got past, an error inside a transaction, the extended
// protocol with NULL parameters, multi-line and multi-statement SQL, and
// the pinned session settings surviving RESET ALL.
func engAcctWorkload() *engWorkload {
	w := newEngWorkload()
	w.connect("s1").connect("s2").connect("s3")
	w.sql("s1", "BEGIN")                                                               // 4
	w.sql("s1", "UPDATE acct SET balance = balance - 10 WHERE id = 1")                 // 5
	w.sql("s2", "BEGIN")                                                               // 6
	w.sql("s2", "UPDATE acct SET balance = balance + 5 WHERE id = 1")                  // 7: waits for s1
	w.sql("s3", "SELECT id, owner, balance, note FROM acct WHERE id <= 5 ORDER BY id") // 8
	w.sql("s1", "INSERT INTO ledger (acct, delta) VALUES (1, -10)")                    // 9
	w.sql("s1", "COMMIT")                                                              // 10: releases s2
	w.sql("s2", "INSERT INTO ledger (acct, delta) VALUES (1, 5)")                      // 11
	w.sql("s2", "COMMIT")                                                              // 12
	w.sql("s3", "BEGIN")                                                               // 13
	w.sql("s3", "SELECT 1/0")                                                          // 14: 22012
	w.sql("s3", "SELECT 1")                                                            // 15: 25P02
	w.sql("s3", "ROLLBACK")                                                            // 16
	w.params("s3", "SELECT id, note FROM acct WHERE id = $1 AND ($2::text IS NULL OR owner = $2)",
		engText("3"), engNull()) // 17
	w.params("s3", "UPDATE acct SET note = $1 WHERE id = $2",
		Param{TypeOID: 25}, Param{Value: engStrPtr("4"), TypeOID: 23}) // 18
	w.sql("s1", "SELECT id,\n       balance\n  FROM acct\n WHERE id IN (1, 2)\n ORDER BY id")                     // 19
	w.sql("s2", "BEGIN; UPDATE acct SET balance = 0 WHERE id = 9; SELECT balance FROM acct WHERE id = 9; COMMIT") // 20
	w.sql("s1", "SET TimeZone = 'Europe/Berlin'")                                                                 // 21
	w.sql("s1", "RESET ALL")                                                                                      // 22
	w.sql("s1", "SELECT current_setting('TimeZone'), current_setting('DateStyle'), current_setting('IntervalStyle'), "+
		"current_setting('extra_float_digits'), current_setting('bytea_output'), current_setting('search_path')") // 23
	w.sql("s1", `SELECT '2025-01-02 03:04:05+00'::timestamptz, interval '1 day 2 hours', 0.1::float8, '\x01ff'::bytea`) // 24
	w.sql("s3", "SELECT sum(balance) FROM acct")                                                                        // 25
	w.sql("s3", "SELECT id FROM acct WHERE id > 45")                                                                    // 26
	w.disconnect("s1").disconnect("s2")
	return w // s3 is left open: the engine closes it at the end
}

func engStrPtr(s string) *string { return &s }

func TestReplayOrderedDeterministic(t *testing.T) {
	c := engStartSandbox(t, engAcctSetup)
	dbs := engCopyDB(t, c, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	evs := engAcctWorkload().evs

	_, first, st := engReplayResults(t, ctx, evs, c.DSN(dbs[0]), EngineOptions{})
	_, second, _ := engReplayResults(t, ctx, evs, c.DSN(dbs[1]), EngineOptions{})

	if st.Statements != 23 || st.Sessions != 3 || st.LockWaits != 1 || st.Errors != 2 {
		t.Errorf("stats = %+v, want 23 statements, 3 sessions, 1 lock wait, 2 errors", st)
	}
	if !reflect.DeepEqual(engComparable(first), engComparable(second)) {
		for i := range first {
			a, b := engComparable(first[i : i+1])[0], engComparable(second[i : i+1])[0]
			if !reflect.DeepEqual(a, b) {
				t.Errorf("seq %d differs between replays:\n first %+v\nsecond %+v", a.Seq, a, b)
			}
		}
	}

	r := engBySeq(first)
	str := func(s *string) string {
		if s == nil {
			return "NULL"
		}
		return *s
	}
	tests := []struct {
		seq      int64
		status   Status
		sqlstate string
		tag      string
		rows     int64
		sample   string // rows joined by ";" and values by ","
		check    func(t *testing.T, r *Result)
	}{
		{seq: 5, status: StatusOK, tag: "UPDATE 1"},
		{seq: 7, status: StatusOK, tag: "UPDATE 1", check: func(t *testing.T, r *Result) {
			if r.LockWait == nil || !reflect.DeepEqual(r.LockWait.BlockedBy, []string{"s1"}) {
				t.Errorf("lock wait = %+v, want blocked by s1", r.LockWait)
			}
		}},
		{seq: 8, status: StatusOK, tag: "SELECT 5", rows: 5,
			sample: "1,owner1,100,;2,owner2,100,;3,owner3,100,NULL;4,owner4,100,;5,owner5,100,"},
		{seq: 14, status: StatusError, sqlstate: "22012"},
		{seq: 15, status: StatusError, sqlstate: "25P02"},
		{seq: 16, status: StatusOK, tag: "ROLLBACK"},
		{seq: 17, status: StatusOK, tag: "SELECT 1", rows: 1, sample: "3,NULL"},
		{seq: 18, status: StatusOK, tag: "UPDATE 1"},
		{seq: 19, status: StatusOK, tag: "SELECT 2", rows: 2, sample: "1,95;2,100"},
		{seq: 20, status: StatusOK, tag: "COMMIT", rows: 1, sample: "0", check: func(t *testing.T, r *Result) {
			if r.Statements != 4 || len(r.Columns) != 1 || r.Columns[0].Name != "balance" {
				t.Errorf("multi-statement result: statements %d columns %+v", r.Statements, r.Columns)
			}
		}},
		{seq: 23, status: StatusOK, rows: 1, sample: `UTC,ISO, MDY,postgres,1,hex,"$user", public`},
		{seq: 24, status: StatusOK, rows: 1, sample: `2025-01-02 03:04:05+00,1 day 02:00:00,0.1,\x01ff`},
		{seq: 25, status: StatusOK, rows: 1, sample: "4895"},
		{seq: 26, status: StatusOK, rows: 5, check: func(t *testing.T, r *Result) {
			if r.OrderedHash == "" || r.MultisetHash == "" || len(r.Columns) != 1 || r.Columns[0].TypeOID != 23 {
				t.Errorf("hashes/columns missing: %+v", r)
			}
		}},
	}
	for _, tt := range tests {
		got := r[tt.seq]
		if got == nil {
			t.Errorf("seq %d: no result", tt.seq)
			continue
		}
		if got.Status != tt.status || got.SQLState != tt.sqlstate || (tt.tag != "" && got.Tag != tt.tag) || got.Rows != tt.rows {
			t.Errorf("seq %d (%s): got status %s sqlstate %q tag %q rows %d (%s), want %s %q %q %d",
				tt.seq, got.SQL, got.Status, got.SQLState, got.Tag, got.Rows, got.Message, tt.status, tt.sqlstate, tt.tag, tt.rows)
		}
		if tt.sample != "" {
			var rows []string
			for _, row := range got.Sample {
				var vals []string
				for _, v := range row {
					vals = append(vals, str(v))
				}
				rows = append(rows, strings.Join(vals, ","))
			}
			if s := strings.Join(rows, ";"); s != tt.sample {
				t.Errorf("seq %d sample = %q, want %q", tt.seq, s, tt.sample)
			}
		}
		if tt.check != nil {
			tt.check(t, got)
		}
	}
}

func TestReplayStatementTimeout(t *testing.T) {
	c := engStartSandbox(t, "")
	w := newEngWorkload().sql("a", "SELECT pg_sleep(10)").sql("a", "SELECT 2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, rs, st := engReplayResults(t, ctx, w.evs, c.DSN("app"), EngineOptions{StatementTimeout: 200 * time.Millisecond})
	if rs[0].Status != StatusTimeout || rs[0].SQLState != "57014" {
		t.Errorf("runaway statement: status %s sqlstate %s, want timeout 57014", rs[0].Status, rs[0].SQLState)
	}
	if rs[1].Status != StatusOK || st.Timeouts != 1 {
		t.Errorf("after timeout: %+v, stats %+v", rs[1], st)
	}
}

// TestReplayConnectionLost kills a session's backend mid-statement: that
// statement is conn_lost, the session goes on on a new connection.
func TestReplayConnectionLost(t *testing.T) {
	c := engStartSandbox(t, "")
	w := newEngWorkload().connect("a").
		sql("a", "SELECT 1").
		sql("a", "SELECT pg_sleep(20) /* victim */").
		sql("a", "SELECT 3").
		sql("b", "SELECT 4")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	killed := make(chan error, 1)
	go func() {
		conn, err := c.Conn(ctx, "app")
		if err != nil {
			killed <- err
			return
		}
		defer conn.Close(ctx)
		for ctx.Err() == nil {
			var n int
			err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE query LIKE '%victim%' AND pid <> pg_backend_pid()`).Scan(&n)
			if err != nil || n > 0 {
				killed <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		killed <- ctx.Err()
	}()
	_, rs, st := engReplayResults(t, ctx, w.evs, c.DSN("app"), EngineOptions{})
	if err := <-killed; err != nil {
		t.Fatal(err)
	}
	want := []Status{StatusOK, StatusConnLost, StatusOK, StatusOK}
	for i, r := range rs {
		if r.Status != want[i] {
			t.Errorf("seq %d %q: status %s (%s %s), want %s", r.Seq, r.SQL, r.Status, r.SQLState, r.Message, want[i])
		}
	}
	if st.ConnLost != 1 {
		t.Errorf("stats %+v, want 1 conn_lost", st)
	}
}

// TestReplayInterrupted cancels the replay mid-statement: Replay returns
// the cancellation and the results file holds every finished statement,
// every line complete.
func TestReplayInterrupted(t *testing.T) {
	c := engStartSandbox(t, "")
	w := newEngWorkload()
	for range 50 {
		w.sql("a", "SELECT generate_series(1, 10)")
	}
	w.sql("b", "SELECT pg_sleep(30)")
	w.sql("a", "SELECT 'never'")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf bytes.Buffer
	rw, err := NewResultsWriter(&buf, ResultsHeader{})
	if err != nil {
		t.Fatal(err)
	}
	progress := make(chan int64, 100)
	go func() {
		// cancel once the 50 quick statements are done and the sleep runs
		for done := range progress {
			if done >= 50 {
				time.Sleep(100 * time.Millisecond)
				cancel()
				return
			}
		}
	}()
	start := time.Now()
	_, err = Replay(ctx, NewSliceSource(w.evs), c.DSN("app"), EngineOptions{
		Progress: func(done, total int64) {
			select {
			case progress <- done:
			default:
			}
		},
	}, rw)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Replay error = %v, want context.Canceled", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("cancel took %v", time.Since(start))
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	rs := engReadResults(t, buf.Bytes())
	if len(rs) != 50 {
		t.Errorf("results after cancel: %d, want 50", len(rs))
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
		t.Error("results file does not end with a complete line")
	}
}

// TestReplayConcurrentSlowSession: in concurrent mode a long statement
// does not hold up other sessions. Measured by order, not time: b's
// statements all finish (and are written) before a's sleep does.
func TestReplayConcurrentSlowSession(t *testing.T) {
	c := engStartSandbox(t, "")
	w := newEngWorkload()
	w.step = 10 * time.Millisecond
	w.connect("a").connect("b")
	w.sql("a", "SELECT pg_sleep(0.5)")
	for range 5 {
		w.sql("b", "SELECT clock_timestamp()")
	}
	w.sql("a", "SELECT 'after sleep'")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, speed := range []float64{0, 1, 2.5} {
		var buf bytes.Buffer
		rw, _ := NewResultsWriter(&buf, ResultsHeader{})
		if _, err := Replay(ctx, NewSliceSource(w.evs), c.DSN("app"), EngineOptions{Mode: ModeConcurrent, Speed: speed, MaxConns: 4}, rw); err != nil {
			t.Fatal(err)
		}
		rw.Close()
		rr, _ := NewResultsReader(&buf)
		var order []string
		for rr.Next() {
			order = append(order, rr.Result().Session)
		}
		if got := strings.Join(order, ""); got != "bbbbbaa" {
			t.Errorf("speed %g: completion order %s, want bbbbbaa", speed, got)
		}
	}
}

// TestReplaySkipsCopyFromStdin: the data of COPY … FROM STDIN is not in a
// engWorkload; the statement is skipped with a reason instead of hanging.
func TestReplaySkipsCopyFromStdin(t *testing.T) {
	c := engStartSandbox(t, "CREATE TABLE t (x int)")
	w := newEngWorkload().sql("a", "COPY t FROM STDIN").sql("a", "SELECT count(*) FROM t")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, rs, _ := engReplayResults(t, ctx, w.evs, c.DSN("app"), EngineOptions{})
	if rs[0].Status != StatusSkipped || rs[1].Status != StatusOK {
		t.Errorf("got %s, %s; want skipped, ok", rs[0].Status, rs[1].Status)
	}
}

// TestReplayOrderedReadsOverlap: in ordered mode pure reads of different
// sessions may run side by side, anything else waits for what runs. By
// order, not time: a quick read started after a slow read finishes first;
// a quick write does not.
func TestReplayOrderedReadsOverlap(t *testing.T) {
	c := engStartSandbox(t, "CREATE SEQUENCE s")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const slow = "SELECT count(*) FROM generate_series(1, 3000000) g"
	tests := []struct {
		quick string
		want  string // sessions in completion order
	}{
		{"SELECT 1", "ba"},
		{"SELECT nextval('s')", "ab"},
	}
	for _, tt := range tests {
		w := newEngWorkload().connect("a").connect("b").sql("a", slow).sql("b", tt.quick)
		var buf bytes.Buffer
		rw, _ := NewResultsWriter(&buf, ResultsHeader{})
		if _, err := Replay(ctx, NewSliceSource(w.evs), c.DSN("app"), EngineOptions{}, rw); err != nil {
			t.Fatal(err)
		}
		rw.Close()
		rr, _ := NewResultsReader(&buf)
		var order string
		for rr.Next() {
			order += rr.Result().Session
		}
		if order != tt.want {
			t.Errorf("%s after a slow read: completion order %s, want %s", tt.quick, order, tt.want)
		}
	}
}

// TestReplayClosesOpenSessionsAtEnd: a capture that ends while a session
// holds a lock another one waits for (no COMMIT, no disconnect in the
// workload) still finishes: the engine closes what is left open, in
// first-seen order, which rolls the holder back and releases the waiter.
func TestReplayClosesOpenSessionsAtEnd(t *testing.T) {
	c := engStartSandbox(t, engAcctSetup)
	w := newEngWorkload().
		sql("holder", "BEGIN").
		sql("holder", "UPDATE acct SET balance = 1 WHERE id = 7").
		sql("waiter", "UPDATE acct SET balance = 2 WHERE id = 7")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, rs, st := engReplayResults(t, ctx, w.evs, c.DSN("app"), EngineOptions{})
	if len(rs) != 3 || rs[2].Status != StatusOK || rs[2].LockWait == nil || st.LockWaits != 1 {
		t.Fatalf("results %+v, stats %+v", rs, st)
	}
	if got := engQueryOne(t, c.DSN("app"), "SELECT balance::text FROM acct WHERE id = 7"); got != "2" {
		t.Errorf("balance = %s, want 2 (the holder rolled back, the waiter committed)", got)
	}
}

func engQueryOne(t *testing.T, dsn, q string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, q).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
