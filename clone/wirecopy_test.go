package clone_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestRelay runs the wire-level copy between two databases of a real
// server: what arrives, what the connections are fit for afterwards, and
// each way a COPY can fail on either end.
func TestRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := localtest.Start(t)
	for _, db := range []string{"rsrc", "rdst"} {
		if err := c.CreateDatabase(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	// Rows of every size around the relay's buffer (256 KiB) and up to
	// several times it, so messages arrive cut anywhere; an array of a
	// domain, whose element OID differs between the two databases, and
	// one of a built-in type, whose element OID array_recv checks.
	exec1(t, ctx, c.DSN("rsrc"), `
CREATE DOMAIN score AS int CHECK (VALUE >= 0);
CREATE TABLE t (id int PRIMARY KEY, body text, scores score[], n numeric, ints int[]);
INSERT INTO t SELECT i, repeat(md5(i::text), CASE WHEN i % 100 = 0 THEN 20000 + i ELSE (i * 7919) % 500 END), CASE WHEN i % 5 = 0 THEN NULL ELSE ARRAY[i % 7, i % 11]::score[] END, i / 7.0, ARRAY[i]
  FROM generate_series(1, 3000) i;`)
	exec1(t, ctx, c.DSN("rdst"), `
CREATE DOMAIN score AS int CHECK (VALUE >= 0);
CREATE TABLE t (id int PRIMARY KEY, body text, scores score[], n numeric CHECK (n < 1000), ints int[]);
CREATE TABLE small (id int);`)
	var srcScore, dstScore uint32
	queryRow(t, ctx, c.DSN("rsrc"), `SELECT 'score'::regtype::oid`, nil, &srcScore)
	queryRow(t, ctx, c.DSN("rdst"), `SELECT 'score'::regtype::oid`, nil, &dstScore)
	if srcScore == dstScore {
		t.Fatalf("the domain has OID %d in both databases: the relabel is not exercised", srcScore)
	}
	connect := func(db string) *pgconn.PgConn {
		t.Helper()
		conn, err := pgx.Connect(ctx, c.DSN(db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn.PgConn()
	}
	sum := func(db, where string) (n int64, hash string) {
		t.Helper()
		queryRow(t, ctx, c.DSN(db), `SELECT count(*), coalesce(md5(string_agg(t::text, ',' ORDER BY id)), '') FROM t WHERE `+where, nil, &n, &hash)
		return n, hash
	}
	relabel := map[int][2]uint32{2: {srcScore, dstScore}}
	const copyOut = `COPY t (id, body, scores, n, ints) TO STDOUT (FORMAT binary)`
	const copyIn = `COPY t (id, body, scores, n, ints) FROM STDIN (FORMAT binary)`

	t.Run("copies every row", func(t *testing.T) {
		src, dst := connect("rsrc"), connect("rdst")
		var advanced int64
		rows, bytes, err := clone.Relay(ctx, src, dst, copyOut, copyIn, clone.NewArrayRelabeler(5, relabel), func(n int64) { advanced += n })
		if err != nil {
			t.Fatal(err)
		}
		wantN, wantHash := sum("rsrc", "true")
		gotN, gotHash := sum("rdst", "true")
		if rows != wantN || gotN != wantN || gotHash != wantHash {
			t.Errorf("relay: %d rows reported, %d in the target (hash %s), want %d (hash %s)", rows, gotN, gotHash, wantN, wantHash)
		}
		if bytes < 20<<20 || advanced != bytes {
			t.Errorf("relay: %d bytes, %d reported to progress; want the same, over 20 MiB", bytes, advanced)
		}
		// Both connections are idle and usable again.
		for name, conn := range map[string]*pgconn.PgConn{"source": src, "target": dst} {
			if _, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
				t.Errorf("%s connection after the relay: %v", name, err)
			}
			if conn.TxStatus() != 'I' {
				t.Errorf("%s connection after the relay: transaction status %q", name, conn.TxStatus())
			}
		}
		exec1(t, ctx, c.DSN("rdst"), "TRUNCATE t")
	})

	for _, tt := range []struct {
		name, srcSQL, dstSQL string
		rel                  map[int][2]uint32
		want                 string // in the error
		wantCode             string // the PgError's SQLSTATE, if any
		midStream            bool   // rows went through before the failure
	}{
		{"source fails mid-stream", `COPY (SELECT id, body, scores, 1 / (n - 300), ints FROM t) TO STDOUT (FORMAT binary)`, copyIn, relabel,
			"copy out of source", "22012", true},
		{"target fails mid-stream", `COPY (SELECT id, body, scores, n * 3, ints FROM t) TO STDOUT (FORMAT binary)`, copyIn, relabel,
			"copy into target", "23514", true},
		{"source refuses the COPY", `COPY nosuch TO STDOUT (FORMAT binary)`, copyIn, nil,
			"copy out of source", "42P01", false},
		{"target refuses the COPY", copyOut, `COPY nosuch FROM STDIN (FORMAT binary)`, nil,
			"copy into target", "42P01", false},
		// PostgreSQL 15 reads an array of a user-defined type whatever its
		// element OID says, but checks a built-in one: relabelling int[]
		// as text[] shows the relay rewrites the stream on the wire.
		{"arrays relabelled to another built-in type", copyOut, copyIn, map[int][2]uint32{2: {srcScore, dstScore}, 4: {23, 25}},
			"copy into target", "42804", false},
		{"relabel of another element type", copyOut, copyIn, map[int][2]uint32{2: {srcScore + 1, dstScore}},
			"element type OID", "", false},
		{"text into binary", `COPY t TO STDOUT`, copyIn, relabel,
			"not a binary COPY stream", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rel = clone.NewArrayRelabeler(5, tt.rel)
			_, bytes, err := clone.Relay(ctx, connect("rsrc"), connect("rdst"), tt.srcSQL, tt.dstSQL, rel, func(int64) {})
			if tt.midStream && bytes < 1<<20 {
				t.Errorf("%d bytes went through before the failure; the case means to fail mid-stream", bytes)
			}
			var pgErr *pgconn.PgError
			switch {
			case err == nil:
				t.Fatal("relay succeeded")
			case !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q, want one containing %q", err, tt.want)
			case tt.wantCode != "" && (!errors.As(err, &pgErr) || pgErr.Code != tt.wantCode):
				t.Errorf("error %q, want SQLSTATE %s", err, tt.wantCode)
			}
			// Nothing of the failed COPY stays in the target.
			if n, _ := sum("rdst", "true"); n != 0 {
				t.Errorf("%d rows left in the target", n)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		cctx, ccancel := context.WithCancel(ctx)
		var advanced int64
		_, _, err := clone.Relay(cctx, connect("rsrc"), connect("rdst"), copyOut, copyIn, clone.NewArrayRelabeler(5, relabel), func(n int64) {
			if advanced += n; advanced > 5<<20 {
				ccancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
		if n, _ := sum("rdst", "true"); n != 0 {
			t.Errorf("%d rows left in the target", n)
		}
	})
}
