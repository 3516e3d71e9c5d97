package replay

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
)

// engWorkload builds a test engWorkload: events get increasing Seq and Time.
type engWorkload struct {
	evs  []Event
	t0   time.Time
	step time.Duration
}

func newEngWorkload() *engWorkload {
	return &engWorkload{t0: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), step: time.Millisecond}
}

func (w *engWorkload) add(ev Event) *engWorkload {
	ev.Seq = int64(len(w.evs) + 1)
	if ev.Time.IsZero() {
		ev.Time = w.t0.Add(time.Duration(len(w.evs)) * w.step)
	}
	if ev.Kind == "" {
		ev.Kind = KindStatement
	}
	if ev.Database == "" {
		ev.Database = "app"
	}
	w.evs = append(w.evs, ev)
	return w
}

func (w *engWorkload) connect(sess string) *engWorkload {
	return w.add(Event{Session: sess, Kind: KindConnect, User: "app"})
}

func (w *engWorkload) disconnect(sess string) *engWorkload {
	return w.add(Event{Session: sess, Kind: KindDisconnect})
}

func (w *engWorkload) sql(sess, sql string) *engWorkload {
	return w.add(Event{Session: sess, SQL: sql})
}

func (w *engWorkload) params(sess, sql string, ps ...Param) *engWorkload {
	if ps == nil {
		ps = []Param{}
	}
	return w.add(Event{Session: sess, SQL: sql, Params: ps})
}

func engText(s string) Param { return Param{Value: &s} }

func engNull() Param { return Param{} }

// engReplayResults replays evs into dsn and returns the results file's bytes and
// its results sorted by Seq.
func engReplayResults(t testing.TB, ctx context.Context, evs []Event, dsn string, opts EngineOptions) ([]byte, []*Result, EngineStats) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewResultsWriter(&buf, ResultsHeader{Mode: opts.Mode, SampleRows: opts.SampleRows})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Replay(ctx, NewSliceSource(evs), dsn, opts, w)
	if cerr := w.Close(); cerr != nil {
		t.Fatalf("close results: %v", cerr)
	}
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	return buf.Bytes(), engReadResults(t, buf.Bytes()), st
}

func engReadResults(t testing.TB, b []byte) []*Result {
	t.Helper()
	rr, err := NewResultsReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []*Result
	for rr.Next() {
		out = append(out, rr.Result())
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b *Result) int { return int(a.Seq - b.Seq) })
	return out
}

// engBySeq indexes results.
func engBySeq(rs []*Result) map[int64]*Result {
	m := make(map[int64]*Result, len(rs))
	for _, r := range rs {
		m[r.Seq] = r
	}
	return m
}

// comparable strips what legitimately differs between two replays.
func engComparable(rs []*Result) []Result {
	out := make([]Result, len(rs))
	for i, r := range rs {
		c := *r
		c.Duration = 0
		out[i] = c
	}
	return out
}

// engStartSandbox starts a cluster with an "app" template database made by
// setup, and returns it.
func engStartSandbox(t testing.TB, setup string, opts ...func(*local.Config)) *local.Cluster {
	t.Helper()
	c := localtest.Start(t, opts...)
	ctx := context.Background()
	if err := c.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if setup != "" {
		engExecSQL(t, c, "app", setup)
	}
	return c
}

func engExecSQL(t testing.TB, c *local.Cluster, db, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Conn(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// engCopyDB makes n template copies of "app" named app_1 … app_n.
func engCopyDB(t testing.TB, c *local.Cluster, n int) []string {
	t.Helper()
	var names []string
	for i := 1; i <= n; i++ {
		name := "app_" + strconv.Itoa(i)
		if err := c.CreateDatabaseFromTemplate(context.Background(), name, "app"); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}
