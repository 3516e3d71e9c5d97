package clone

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestNewConninfo(t *testing.T) {
	tests := []struct {
		dsn, wantArg, wantPassword string
	}{
		{"host=db user=app password=s3cret dbname=shop", "host=db user=app dbname=shop", "s3cret"},
		{"password='with space' host=db dbname=shop", "host=db dbname=shop", "with space"},
		{"postgres://app:s3cret@db:5432/shop?sslmode=disable", "postgres://app@db:5432/shop?sslmode=disable", "s3cret"},
		{"postgres://app@db/shop?password=s3cret", "postgres://app@db/shop", "s3cret"},
		{"host=/tmp/sock dbname=shop", "host=/tmp/sock dbname=shop", ""},
	}
	for _, tt := range tests {
		t.Setenv("PGPASSWORD", "")
		t.Setenv("PGPASSFILE", "/nonexistent")
		ci, err := newConninfo(tt.dsn)
		if err != nil {
			t.Fatalf("newConninfo(%q): %v", tt.dsn, err)
		}
		if ci.arg != tt.wantArg || ci.password != tt.wantPassword {
			t.Errorf("newConninfo(%q) = %q, %q; want %q, %q", tt.dsn, ci.arg, ci.password, tt.wantArg, tt.wantPassword)
		}
		// The stripped form still means the same connection.
		a, _ := pgconn.ParseConfig(tt.dsn)
		b, err := pgconn.ParseConfig(ci.arg)
		if err != nil || a.Host != b.Host || a.Database != b.Database || a.User != b.User {
			t.Errorf("newConninfo(%q): %q connects elsewhere (%v)", tt.dsn, ci.arg, err)
		}
	}
}

func TestTailWriterRedactsAndKeepsTheEnd(t *testing.T) {
	w := &tailWriter{max: 3, secret: "s3cret", log: slog.New(slog.DiscardHandler), program: "pg_restore"}
	w.Write([]byte("line 1\nline 2\nconnection to host=db password=s3cret failed\n"))
	w.Write([]byte("pg_restore: error: the password s3cret is wrong\npartial"))
	w.flush()
	got := w.String()
	if strings.Contains(got, "s3cret") || strings.Contains(got, "line 1") || !strings.HasSuffix(got, "partial") {
		t.Errorf("tail = %q", got)
	}
	err := &toolError{program: "pg_restore", err: errors.New("exit status 1"), stderr: got}
	if !strings.Contains(err.Error(), "pg_restore: exit status 1: ") {
		t.Errorf("toolError = %q", err)
	}
}

func TestTypeMapNeedsText(t *testing.T) {
	m := typeMap{
		23:    {name: "integer", typtype: 'b', binaryIO: true},
		1007:  {name: "integer[]", typtype: 'b', elem: 23, binaryIO: true},
		16400: {name: "mood", typtype: 'e', binaryIO: true},
		16401: {name: "mood[]", typtype: 'b', elem: 16400, binaryIO: true},
		16402: {name: "address", typtype: 'c', binaryIO: true},
		16403: {name: "posint", typtype: 'd', basetype: 23, binaryIO: true},
		16404: {name: "posint[]", typtype: 'b', elem: 16403, binaryIO: true},
		16405: {name: "moods", typtype: 'd', basetype: 16401, binaryIO: true},
		16406: {name: "citext", typtype: 'b', binaryIO: true},
		16407: {name: "nosend", typtype: 'b', binaryIO: false},
		16408: {name: "addr_dom", typtype: 'd', basetype: 16402, binaryIO: true},
		16409: {name: "address[]", typtype: 'b', elem: 16402, binaryIO: true},
		16410: {name: "citext[]", typtype: 'b', elem: 16406, binaryIO: true},
		16411: {name: "moods_dom", typtype: 'd', basetype: 16401, binaryIO: true},
		16412: {name: "moods_dom[]", typtype: 'b', elem: 16411, binaryIO: true},
		16413: {name: "nosend[]", typtype: 'b', elem: 16407, binaryIO: true},
		16414: {name: "floatrange", typtype: 'r', binaryIO: true},
		16415: {name: "floatrange[]", typtype: 'b', elem: 16414, binaryIO: true},
	}
	tests := []struct {
		oid     uint32
		text    bool
		relabel uint32
	}{
		{oid: 23}, {oid: 1007}, {oid: 16400}, {oid: 16406}, {oid: 16403}, {oid: 16414},
		{oid: 16401, relabel: 16400}, // enum[]: one OID in the header
		{oid: 16404, relabel: 16403}, // domain[]
		{oid: 16405, relabel: 16400}, // a domain over enum[]
		{oid: 16410, relabel: 16406}, // extension type[]
		{oid: 16402, text: true},     // composite
		{oid: 16408, text: true},     // domain over a composite
		{oid: 16409, text: true},     // composite[]: OIDs in every element
		{oid: 16412, text: true},     // array of a domain over an array
		{oid: 16415, text: true},     // range[]
		{oid: 16407, text: true}, {oid: 16413, text: true}, {oid: 99999, text: true},
	}
	for _, tt := range tests {
		why, relabel := m.needsText(tt.oid)
		if (why != "") != tt.text || relabel != tt.relabel {
			t.Errorf("needsText(%d %s) = %q, %d; want text %v, relabel %d", tt.oid, m[tt.oid].name, why, relabel, tt.text, tt.relabel)
		}
	}
}

func TestParallelWorkers(t *testing.T) {
	tests := []struct {
		cpus, jobs, want int
	}{
		{cpus: 2, jobs: 2, want: 0}, // every core already runs an index build
		{cpus: 2, jobs: 1, want: 1}, // one spare core
		{cpus: 8, jobs: 2, want: 3}, // four cores per session: three workers
		{cpus: 1, jobs: 4, want: 0}, // more sessions than cores
		{cpus: 4, jobs: 0, want: 3}, // jobs 0 counts as one session
		{cpus: 16, jobs: 16, want: 0},
	}
	for _, tt := range tests {
		if got := parallelWorkers(tt.cpus, tt.jobs); got != tt.want {
			t.Errorf("parallelWorkers(%d, %d) = %d, want %d", tt.cpus, tt.jobs, got, tt.want)
		}
	}
}

func TestPostDataSortMemory(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name             string
		largest          int64
		wantMin, wantMax int64
	}{
		{"empty database: the floor", 0, 8 * mib, 8 * mib},
		{"the 856 MB fixture's largest table (114 MiB)", 114 * mib, 8 * mib, 9 * mib},
		{"1 GiB table", 1 << 30, 24 * mib, 26 * mib},
		{"100 GiB table", 100 << 30, 240 * mib, 260 * mib},
		{"100 TiB table: the ceiling", 100 << 40, 2 << 30, 2 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := postDataSortMemory(tt.largest)
			if m < tt.wantMin || m > tt.wantMax {
				t.Fatalf("postDataSortMemory(%d) = %d MiB, want %d..%d MiB", tt.largest, m/mib, tt.wantMin/mib, tt.wantMax/mib)
			}
			// Below the ceiling, a sort of the whole table merges its runs
			// (of m bytes each) in one pass: PostgreSQL merges m / 272 KiB
			// runs at once.
			if m < 2<<30 && float64(tt.largest)/float64(m) > float64(m)/float64(272<<10) {
				t.Errorf("postDataSortMemory(%d) = %d: %.0f runs, more than one pass merges (%d)", tt.largest, m, float64(tt.largest)/float64(m), m/(272<<10))
			}
		})
	}
}

func TestConnectHint(t *testing.T) {
	dial := func(err error) error {
		return fmt.Errorf("failed to connect: %w", &net.OpError{Op: "dial", Net: "tcp", Err: err})
	}
	tests := []struct {
		name string
		err  error
		want string // "" for no hint
	}{
		{"no such database", &pgconn.PgError{Code: "3D000"}, "check the database name in --source"},
		{"wrong password", &pgconn.PgError{Code: "28P01"}, "check the user and password in --source"},
		{"no such role", &pgconn.PgError{Code: "28000"}, "check the user and password in --source"},
		{"no connection slot", &pgconn.PgError{Code: "53300"}, "no connection slot left"},
		{"other server error", &pgconn.PgError{Code: "57P03"}, ""},
		{"nothing on the TCP port", dial(syscall.ECONNREFUSED), "no server listens there: check the host and port in --source"},
		{"no socket file", dial(syscall.ENOENT), "no server listens there"},
		{"no answer", dial(timeoutError{}), "the host did not answer in time"},
		{"something else", errors.New("tls: handshake failure"), ""},
		{"a missing file, not a dial", &os.PathError{Op: "open", Path: "/etc/certs/root.crt", Err: syscall.ENOENT}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := connectHint(tt.err, "--source")
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("connectHint = %q, want one containing %q", got, tt.want)
			}
			err := connectError("source x", "--source", tt.err)
			if !errors.Is(err, tt.err) {
				t.Errorf("connectError lost the cause: %v", err)
			}
		})
	}
}

// timeoutError is a net.Error that timed out, as a dial past its deadline.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
