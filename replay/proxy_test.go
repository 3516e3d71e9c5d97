package replay

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pxRun is a capture proxy running for a test.
type pxRun struct {
	p      *Proxy
	addr   *net.TCPAddr
	out    *pxLockedBuffer
	cancel context.CancelFunc
	done   chan error
}

type pxLockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *pxLockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *pxLockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

func pxStartProxy(t testing.TB, upstream string) *pxRun {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &pxRun{out: &pxLockedBuffer{}, cancel: cancel, done: make(chan error, 1), addr: ln.Addr().(*net.TCPAddr)}
	r.p = &Proxy{Upstream: upstream, Out: r.out}
	go func() { r.done <- r.p.Serve(ctx, ln) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// dsn is a client DSN through the proxy, with the credentials of upstream.
func (r *pxRun) dsn(t testing.TB, upstream, db string) string {
	t.Helper()
	cfg, err := pgconn.ParseConfig(upstream)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable",
		r.addr.Port, cfg.User, cfg.Password, db)
}

// stop shuts the proxy down and returns the recorded events.
func (r *pxRun) stop(t testing.TB) []Event {
	t.Helper()
	if r.cancel == nil {
		return pxEvents(t, r.out.Bytes())
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("proxy: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("proxy did not shut down")
	}
	return pxEvents(t, r.out.Bytes())
}

// pxEvents reads a JSONL workload with the workload reader.
func pxEvents(t testing.TB, b []byte) []Event {
	t.Helper()
	r, err := NewReader(context.Background(), "proxy.jsonl", bytes.NewReader(b), ReaderOptions{Format: FormatJSONL})
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for r.Next() {
		ev := r.Event()
		if ev.Seq != int64(len(evs)+1) {
			t.Errorf("seq %d at position %d", ev.Seq, len(evs)+1)
		}
		evs = append(evs, ev)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.WarningCount > 0 {
		t.Errorf("reading the recorded workload: %d warnings: %v", st.WarningCount, st.Warnings)
	}
	return evs
}

const pxSetup = `
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), active bool, created timestamptz, payload bytea);
INSERT INTO items SELECT g, 'item-' || g, g * 1.25, g % 2 = 0, '2025-01-01'::timestamptz + g * interval '1 day', NULL FROM generate_series(1, 10) g;
`

// pxClientRun is what the client saw: per statement, in order, the
// SQLSTATE ("" for success) and, for text-format queries, the rows.
type pxClientRun struct {
	outcomes []string
	rows     map[string][]string // SQL → rows as "v1|v2"
}

// pxRunClient runs a workload through pgx, in the simple and the
// extended protocol, with a prepared statement, parameters of several
// types and formats (pgx sends ints, bools, timestamps and bytea in
// binary), a committed transaction, an error in a rolled back one and a
// multi-statement query string.
func pxRunClient(t *testing.T, ctx context.Context, dsn string) pxClientRun {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	run := pxClientRun{rows: map[string][]string{}}
	note := func(err error) {
		if err == nil {
			run.outcomes = append(run.outcomes, "")
			return
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			t.Fatalf("client: %v", err)
		}
		run.outcomes = append(run.outcomes, pgErr.Code)
	}
	textQuery := func(sql string, args ...string) {
		var rr *pgconn.ResultReader
		if args == nil {
			results, err := conn.PgConn().Exec(ctx, sql).ReadAll()
			var rows []string
			for _, r := range results {
				for _, row := range r.Rows {
					rows = append(rows, pxJoinRow(row))
				}
			}
			run.rows[sql] = rows
			note(err)
			return
		}
		vals := make([][]byte, len(args))
		for i, a := range args {
			if a != "NULL" {
				vals[i] = []byte(a)
			}
		}
		rr = conn.PgConn().ExecParams(ctx, sql, vals, nil, nil, nil)
		res := rr.Read()
		var rows []string
		for _, row := range res.Rows {
			rows = append(rows, pxJoinRow(row))
		}
		run.rows[sql] = rows
		note(res.Err)
	}

	// 1-2: simple protocol, one and several statements
	textQuery("UPDATE items SET price = price * 2 WHERE id <= 3")
	textQuery("INSERT INTO items (id, name) VALUES (100, 'simple');\nSELECT id, name, price\n  FROM items\n WHERE id IN (1, 100)\n ORDER BY id")
	// 3: extended, text parameters via pgconn, one NULL
	textQuery("SELECT id, name, price, active, created FROM items WHERE id = $1 OR name = $2 OR price = $3 ORDER BY id", "2", "item-5", "NULL")
	// 4: extended via pgx: binary and text parameters of several types
	_, err = conn.Exec(ctx, "INSERT INTO items (id, name, price, active, created, payload) VALUES ($1, $2, $3, $4, $5, $6)",
		101, "ext 'quoted'", "12.50", true, time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC), []byte{0, 1, 0xff})
	note(err)
	// 5: a named prepared statement, executed twice
	if _, err := conn.Prepare(ctx, "get_item", "SELECT name, payload FROM items WHERE id = $1"); err != nil {
		t.Fatal(err)
	}
	var name string
	var payload []byte
	note(conn.QueryRow(ctx, "get_item", 101).Scan(&name, &payload))
	note(conn.QueryRow(ctx, "get_item", 3).Scan(&name, &payload))
	// a committed transaction
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	note(nil) // begin
	_, err = tx.Exec(ctx, "UPDATE items SET active = $1 WHERE id = $2", false, 4)
	note(err)
	note(tx.Commit(ctx))
	// an error inside a transaction that is rolled back
	tx, err = conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	note(nil)
	_, err = tx.Exec(ctx, "UPDATE items SET price = price + $1 WHERE id = $2", 1, 5)
	note(err)
	_, err = tx.Exec(ctx, "SELECT 10 / $1::int", 0)
	note(err)
	_, err = tx.Exec(ctx, "DELETE FROM items WHERE id = $1", 6)
	note(err)
	note(tx.Rollback(ctx))
	// an error outside a transaction, at Parse time
	_, err = conn.Exec(ctx, "SELECT * FROM no_such_table WHERE id = $1", 1)
	note(err)
	textQuery("SELECT id, name, price, active, created, payload FROM items ORDER BY id")
	return run
}

func pxJoinRow(row [][]byte) string {
	var parts []string
	for _, v := range row {
		if v == nil {
			parts = append(parts, "NULL")
		} else {
			parts = append(parts, string(v))
		}
	}
	return strings.Join(parts, "|")
}

// TestProxyCaptureAndReplay runs a pgx client through the proxy (over TCP
// with SCRAM, relayed by the proxy), checks the recorded workload holds
// exactly those statements with their parameters, replays it into a copy of
// the starting database and checks the replay saw what the client saw.
func TestProxyCaptureAndReplay(t *testing.T) {
	c := engStartSandbox(t, pxSetup, localtest.WithTCP)
	dbs := engCopyDB(t, c, 2) // app_1: the original run, app_2: the replay
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pr := pxStartProxy(t, c.DSN("postgres"))
	run := pxRunClient(t, ctx, pr.dsn(t, c.TCPDSN(dbs[0]), dbs[0]))
	evs := pr.stop(t)

	if evs[0].Kind != KindConnect || evs[0].Database != dbs[0] || evs[0].User != "dbtwin" || evs[len(evs)-1].Kind != KindDisconnect {
		t.Errorf("session events: first %+v last %+v", evs[0], evs[len(evs)-1])
	}
	var stmts []Event
	for _, ev := range evs {
		if ev.Kind == KindStatement {
			stmts = append(stmts, ev)
		}
	}
	type want struct {
		sql      string
		params   string // values joined by ",", NULL for nil, b: prefix for binary
		prepared string
		sqlstate string
	}
	wants := []want{
		{sql: "UPDATE items SET price = price * 2 WHERE id <= 3", params: "-"},
		{sql: "INSERT INTO items (id, name) VALUES (100, 'simple');\nSELECT", params: "-"},
		{sql: "SELECT id, name, price, active, created FROM items WHERE id = $1", params: "2,item-5,NULL"},
		{sql: "INSERT INTO items (id, name, price, active, created, payload)", params: "b:AAAAZQ==,ext 'quoted',12.50,b:AQ==,b:AALSe/+/7cA=,b:AAH/"},
		{sql: "SELECT name, payload FROM items WHERE id = $1", params: "b:AAAAZQ==", prepared: "get_item"},
		{sql: "SELECT name, payload FROM items WHERE id = $1", params: "b:AAAAAw==", prepared: "get_item"},
		{sql: "begin", params: "-"},
		{sql: "UPDATE items SET active = $1 WHERE id = $2", params: "b:AA==,b:AAAABA=="},
		{sql: "commit", params: "-"},
		{sql: "begin", params: "-"},
		{sql: "UPDATE items SET price = price + $1 WHERE id = $2", params: "b:AAEAAAAAAAAAAQ==,b:AAAABQ=="},
		{sql: "SELECT 10 / $1::int", params: "b:AAAAAA==", sqlstate: "22012"},
		{sql: "DELETE FROM items WHERE id = $1", sqlstate: "25P02"},
		{sql: "rollback", params: "-"},
		{sql: "SELECT * FROM no_such_table WHERE id = $1", sqlstate: "42P01"},
		{sql: "SELECT id, name, price, active, created, payload FROM items ORDER BY id", params: "-"},
	}
	for i, ev := range stmts {
		if i >= len(wants) {
			t.Errorf("unexpected statement %d: %q", i+1, ev.SQL)
			continue
		}
		w := wants[i]
		if !strings.HasPrefix(ev.SQL, w.sql) {
			t.Errorf("statement %d: SQL %q, want %q…", i+1, ev.SQL, w.sql)
		}
		if w.params != "" {
			var ps []string
			for _, p := range ev.Params {
				switch {
				case p.Value == nil:
					ps = append(ps, "NULL")
				case p.Binary:
					ps = append(ps, "b:"+*p.Value)
				default:
					ps = append(ps, *p.Value)
				}
			}
			got := strings.Join(ps, ",")
			if ev.Params == nil {
				got = "-"
			}
			if got != w.params {
				t.Errorf("statement %d (%s): params %s, want %s", i+1, ev.SQL, got, w.params)
			}
		}
		if w.prepared != "" && ev.Prepared != w.prepared {
			t.Errorf("statement %d: prepared %q, want %q", i+1, ev.Prepared, w.prepared)
		}
		gotState := ""
		if ev.Error != nil {
			gotState = ev.Error.SQLState
		}
		if gotState != w.sqlstate {
			t.Errorf("statement %d (%s): captured error %+v, want %q", i+1, ev.SQL, ev.Error, w.sqlstate)
		}
		if ev.Duration <= 0 || ev.Time.IsZero() {
			t.Errorf("statement %d: no timing (%v at %v)", i+1, ev.Duration, ev.Time)
		}
	}
	if len(stmts) != len(wants) {
		t.Errorf("recorded %d statements, want %d", len(stmts), len(wants))
	}

	// Replay into a fresh copy: the same outcomes, the same rows, the same
	// final table.
	_, rs, _ := engReplayResults(t, ctx, evs, c.DSN(dbs[1]), EngineOptions{})
	if len(rs) != len(run.outcomes) {
		t.Fatalf("replayed %d statements, the client ran %d", len(rs), len(run.outcomes))
	}
	for i, r := range rs {
		if r.SQLState != run.outcomes[i] {
			t.Errorf("statement %d (%s): replay sqlstate %q (%s), original %q", i+1, r.SQL, r.SQLState, r.Message, run.outcomes[i])
		}
		if rows, ok := run.rows[r.SQL]; ok {
			var got []string
			for _, row := range r.Sample {
				var vals [][]byte
				for _, v := range row {
					if v == nil {
						vals = append(vals, nil)
					} else {
						vals = append(vals, []byte(*v))
					}
				}
				got = append(got, pxJoinRow(vals))
			}
			if strings.Join(got, "\n") != strings.Join(rows, "\n") {
				t.Errorf("statement %d (%s): replay rows\n%s\noriginal\n%s", i+1, r.SQL, strings.Join(got, "\n"), strings.Join(rows, "\n"))
			}
		}
	}
	if a, b := pxTableDigest(t, c.DSN(dbs[0]), "items"), pxTableDigest(t, c.DSN(dbs[1]), "items"); a != b {
		t.Errorf("final table differs:\noriginal %s\n  replay %s", a, b)
	}
}

func pxTableDigest(t testing.TB, dsn, table string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) FROM %s t", table)).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestProxyUpstreamTLS: with sslmode=require in the upstream DSN the proxy
// speaks TLS to the server (the client still connects in plain text to the
// loopback port).
func TestProxyUpstreamTLS(t *testing.T) {
	c := engStartSandbox(t, "", localtest.WithTCP)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pxEnableSSL(t, c)

	upstream := strings.Replace(c.TCPDSN("app"), "sslmode=disable", "sslmode=require", 1)
	pr := pxStartProxy(t, upstream)
	conn, err := pgx.Connect(ctx, pr.dsn(t, c.TCPDSN("app"), "app"))
	if err != nil {
		t.Fatal(err)
	}
	var ssl bool
	err = conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ssl {
		t.Error("the proxy's upstream connection does not use TLS")
	}
	evs := pr.stop(t)
	if len(evs) != 3 || !strings.Contains(evs[1].SQL, "pg_stat_ssl") {
		t.Errorf("recorded %+v", evs)
	}
}

// pxEnableSSL gives the cluster a self-signed certificate and turns ssl on.
func pxEnableSSL(t *testing.T, c *local.Cluster) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := c.Record().DataDir()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	for name, block := range map[string]*pem.Block{
		"server.crt": {Type: "CERTIFICATE", Bytes: der},
		"server.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, int(st.Uid), int(st.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	engExecSQL(t, c, "postgres", "ALTER SYSTEM SET ssl = on")
	engExecSQL(t, c, "postgres", "SELECT pg_reload_conf()")
	time.Sleep(200 * time.Millisecond)
}
