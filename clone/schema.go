package clone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/dbtwin/dbtwin/internal/pgbin"
	"github.com/dbtwin/dbtwin/internal/pgdsn"
	"github.com/dbtwin/dbtwin/internal/workdir"
	"github.com/jackc/pgx/v5/pgconn"
)

// This file runs the PostgreSQL client programs: pg_dump for the source's
// schema, pg_restore for the pre-data and post-data sections and for dump
// files, psql for plain SQL dumps.

// restoreFlags are passed to pg_dump and pg_restore wherever they apply.
//
// A clone lands on a different server whose roles, tablespaces and security
// label providers are usually not the source's, so ownership (ALTER ... OWNER
// TO), privileges (GRANT/REVOKE), tablespace assignments and security labels
// are left out: every object in the clone belongs to the role that runs the
// clone. Publications and subscriptions are left out too: a subscription
// would connect to the source's publisher from the test sandbox, and a test
// clone never publishes.
var restoreFlags = []string{
	"--no-owner", "--no-acl", "--no-tablespaces", "--no-security-labels",
	"--no-publications", "--no-subscriptions",
}

// toolPGOptions is passed as PGOPTIONS to pg_restore and psql: bigger
// maintenance_work_mem makes the index builds of a dump file that is
// restored (whose tables' sizes are not known beforehand) sort in memory,
// and the sandbox does not need its commits flushed one by one. A clone's
// post-data sizes its sort memory to its tables instead (postDataSortMemory).
const toolPGOptions = "-c maintenance_work_mem=256MB -c synchronous_commit=off"

// postDataSortMemory is the maintenance_work_mem, in bytes, for the index
// builds of a clone whose largest table holds largest bytes: the least
// memory with which every index build of the clone still sorts in one
// merge pass, and at least 8 MiB.
//
// More is not faster. An index build fills its memory with index tuples
// before it sorts them; memory that the backend has not touched yet costs a
// page fault per 4 KiB page as it fills (about 8 µs each on a virtual
// machine like CI's), and an in-memory sort of hundreds of megabytes runs
// out of the CPU's caches, where sorting runs of a few megabytes and
// merging them stays inside them. Measured on the 856 MB fixture (2
// cores, post-data with pg_restore --jobs 2 on loaded tables): 3.4-4.2 s
// and 6.4-7.9 CPU s with 8 MiB, 4.6-5.0 s and 8.6-9.2 CPU s with 256 MiB;
// the 1.3 M-row (account_id, order_id) index alone 0.40 s against 0.57 s.
//
// Less than this bound costs a second merge pass, which writes and reads
// every tuple again: PostgreSQL's sort writes runs of about M bytes and
// merges M / 272 KiB of them at once (tuplesort_merge_order: a 256 KiB
// read buffer and two blocks per input), so one pass suffices while
// size / M <= M / 272 KiB, that is M >= sqrt(size × 272 KiB). A table's
// heap size bounds what its indexes sort from above for all but indexes
// over most of its columns, and the half again on top covers those.
func postDataSortMemory(largest int64) int64 {
	const floor, ceiling = 8 << 20, 2 << 30
	m := int64(1.5 * math.Sqrt(float64(max(largest, 0))*float64(272<<10)))
	return min(max(m, floor), ceiling)
}

// parallelWorkers is the max_parallel_maintenance_workers and
// max_parallel_workers_per_gather setting for post-data work that runs
// jobs sessions on a machine with cpus cores. pg_restore --jobs already
// keeps one index build or foreign key check per session running; the
// server's default of two extra workers for each (sort workers for an index
// build, a parallel hash join for the query that checks a foreign key)
// then only competes with the other sessions for the same cores, and costs
// more CPU than it saves. Measured on a 2-core machine with --jobs 2:
// post-data 2.8 s with sort workers, 2.2 s without; the three largest
// foreign key checks of the 856 MB fixture take 1.6-1.8 CPU s with their
// workers and 0.77 CPU s without. Workers help only with cores to spare.
func parallelWorkers(cpus, jobs int) int {
	return max(0, cpus/max(1, jobs)-1)
}

// conninfo is a connection string prepared for a client program's argv:
// the password is moved out of it (argv is visible to every user in ps)
// into the environment of the child process.
type conninfo struct {
	arg      string // for -d / --dbname; holds no password
	password string // for PGPASSWORD; may be empty
}

var kvPasswordField = regexp.MustCompile(`(?i)(^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)\s*`)

// newConninfo splits dsn into a password-free connection string and the
// password it (or the environment, or a passfile) supplies.
func newConninfo(dsn string) (conninfo, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return conninfo{}, fmt.Errorf("parse connection string %s: %w", pgdsn.Redact(dsn), err)
	}
	arg := dsn
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return conninfo{}, fmt.Errorf("parse connection URL %s: %w", pgdsn.Redact(dsn), err)
		}
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		q := u.Query()
		if q.Has("password") {
			q.Del("password")
			u.RawQuery = q.Encode()
		}
		arg = u.String()
	} else {
		arg = strings.TrimSpace(kvPasswordField.ReplaceAllString(dsn, "$1"))
	}
	return conninfo{arg: arg, password: cfg.Password}, nil
}

// tools runs the client programs of one PostgreSQL installation.
type tools struct {
	bin pgbin.Dir
	log *slog.Logger
}

// toolError is the failure of a client program, with the last lines it
// printed on stderr (passwords redacted).
type toolError struct {
	program string
	err     error  // from exec: exit status, signal
	stderr  string // last lines, redacted
}

func (e *toolError) Error() string {
	if e.stderr == "" {
		return fmt.Sprintf("%s: %v (no error output)", e.program, e.err)
	}
	return fmt.Sprintf("%s: %v: %s", e.program, e.err, e.stderr)
}

func (e *toolError) Unwrap() error { return e.err }

// run runs program with args. The connection's password goes into
// PGPASSWORD; stdin, when non-nil, feeds the program. It returns a
// *toolError carrying the tail of stderr when the program fails, or the
// context's error when ctx ended first.
func (t tools) run(ctx context.Context, program string, args []string, ci conninfo, stdin io.Reader) error {
	return t.runWithOptions(ctx, program, args, ci, stdin, toolPGOptions)
}

// runWithOptions is run with pgopts, rather than toolPGOptions, as the
// sessions' PGOPTIONS (after any the user set).
func (t tools) runWithOptions(ctx context.Context, program string, args []string, ci conninfo, stdin io.Reader, pgopts string) error {
	return t.runTool(ctx, program, args, ci, stdin, io.Discard, pgopts)
}

// runTool is runWithOptions with the program's standard output going to
// stdout.
func (t tools) runTool(ctx context.Context, program string, args []string, ci conninfo, stdin io.Reader, stdout io.Writer, pgopts string) error {
	path := t.bin.Program(program)
	cmd := exec.CommandContext(ctx, path, args...)
	env := os.Environ()
	if prev := os.Getenv("PGOPTIONS"); prev != "" {
		pgopts = prev + " " + pgopts
	}
	env = append(env, "PGOPTIONS="+pgopts)
	if ci.password != "" {
		env = append(env, "PGPASSWORD="+ci.password)
	}
	cmd.Env = env
	cmd.Stdin = stdin
	tail := &tailWriter{max: 12, secret: ci.password, log: t.log, program: program}
	cmd.Stderr = tail
	cmd.Stdout = stdout
	t.log.Debug("run", "program", path, "args", redactArgs(args, ci))
	err := cmd.Run()
	tail.flush()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("run %s: %w", path, err)
	}
	return &toolError{program: program, err: err, stderr: tail.String()}
}

// redactArgs returns args for a log line.
func redactArgs(args []string, ci conninfo) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = pgdsn.Redact(a)
		if ci.password != "" {
			out[i] = strings.ReplaceAll(out[i], ci.password, "xxxxx")
		}
	}
	return strings.Join(out, " ")
}

// tailWriter keeps the last max lines written to it, redacted, and logs
// every line at debug level.
type tailWriter struct {
	mu      sync.Mutex
	max     int
	secret  string
	log     *slog.Logger
	program string
	partial []byte
	lines   []string
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.addLine(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > 64<<10 { // a runaway line without newline
		w.addLine(string(w.partial))
		w.partial = w.partial[:0]
	}
	return len(p), nil
}

func (w *tailWriter) addLine(s string) {
	s = strings.TrimRight(s, "\r")
	if strings.TrimSpace(s) == "" {
		return
	}
	s = pgdsn.Redact(s)
	if w.secret != "" {
		s = strings.ReplaceAll(s, w.secret, "xxxxx")
	}
	w.log.Debug("tool output", "program", w.program, "line", s)
	w.lines = append(w.lines, s)
	if len(w.lines) > w.max {
		w.lines = w.lines[len(w.lines)-w.max:]
	}
}

func (w *tailWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.addLine(string(w.partial))
		w.partial = nil
	}
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// toolHint returns advice for well-known failures of the client programs,
// or "" when there is none.
func toolHint(err error) string {
	var te *toolError
	if !errors.As(err, &te) {
		return ""
	}
	switch {
	case strings.Contains(te.stderr, "could not open extension control file"),
		strings.Contains(te.stderr, "extension") && strings.Contains(te.stderr, "is not available"):
		return "the source uses an extension the target server does not have: install its package on the target server"
	case strings.Contains(te.stderr, "unsupported version") && strings.Contains(te.stderr, "file header"):
		return "the dump was written by a newer pg_dump than this pg_restore understands: " +
			"install newer PostgreSQL client programs and point --pg-bindir at them"
	case strings.Contains(te.stderr, "could not read from input file"),
		strings.Contains(te.stderr, "did not find magic string"),
		strings.Contains(te.stderr, "does not appear to be a valid archive"):
		return "the dump file is damaged or incomplete: make it again, and check that the copy or download finished"
	case strings.Contains(te.stderr, "server version mismatch"):
		return "pg_dump is older than the source server: install newer PostgreSQL client programs and point --pg-bindir at them"
	}
	return ""
}

// connectHint returns advice for a failed connection to the server a DSN
// given as flag (--source, --target) names, or "" when there is none.
func connectHint(err error, flag string) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "3D000": // invalid_catalog_name
			return "check the database name in " + flag
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return "check the user and password in " + flag + ": the DSN's password=, PGPASSWORD or ~/.pgpass, and pg_hba.conf on that server"
		case "53300": // too_many_connections
			return "the server has no connection slot left: dbtwin needs --jobs + 2 sessions; lower --jobs or raise max_connections"
		}
		return ""
	}
	// Only what dialling the server says: a missing certificate file is
	// ENOENT too.
	var dial *net.OpError
	if !errors.As(err, &dial) || dial.Op != "dial" {
		return ""
	}
	switch {
	case errors.Is(dial, syscall.ECONNREFUSED), errors.Is(dial, syscall.ENOENT):
		return "no server listens there: check the host and port in " + flag + ", and that the server runs"
	case dial.Timeout():
		return "the host did not answer in time: check the host in " + flag + " and any firewall between"
	}
	return ""
}

// connectError is the error for a failed connection to what (`source
// "app@db:5432/shop"`), with connectHint's advice.
func connectError(what, flag string, err error) error {
	if h := connectHint(err, flag); h != "" {
		return fmt.Errorf("connect to %s: %w (%s)", what, err, h)
	}
	return fmt.Errorf("connect to %s: %w", what, err)
}

// withHint appends toolHint's advice to err's message, keeping err in the
// chain.
func withHint(err error) error {
	if h := toolHint(err); h != "" {
		return fmt.Errorf("%w (%s)", err, h)
	}
	return err
}

// dumpSchema writes the source's schema, under the exported snapshot, to a
// custom-format archive at path.
func (t tools) dumpSchema(ctx context.Context, source conninfo, snapshot, path string) error {
	args := []string{
		"--schema-only", "--format=custom", "--file=" + path,
		"--snapshot=" + snapshot, "--no-password",
	}
	args = append(args, restoreFlags...)
	args = append(args, "--dbname="+source.arg)
	return t.run(ctx, "pg_dump", args, source, nil)
}

// restoreSection restores one section ("pre-data" or "post-data") of the
// archive at path into the database target names, with jobs parallel
// sessions when jobs > 1. sortMemory, when positive, is post-data's
// maintenance_work_mem in bytes (postDataSortMemory). list, when not "",
// is a pg_restore --use-list file choosing the entries (postDataList).
func (t tools) restoreSection(ctx context.Context, target conninfo, path, section, list string, jobs int, sortMemory int64) error {
	args := []string{"--section=" + section, "--exit-on-error", "--no-password"}
	args = append(args, restoreFlags...)
	if list != "" {
		args = append(args, "--use-list="+list)
	}
	if jobs > 1 {
		args = append(args, fmt.Sprintf("--jobs=%d", jobs))
	}
	args = append(args, "--dbname="+target.arg, path)
	opts := toolPGOptions
	if section == "post-data" {
		w := parallelWorkers(runtime.NumCPU(), jobs)
		opts += fmt.Sprintf(" -c max_parallel_maintenance_workers=%d -c max_parallel_workers_per_gather=%d", w, w)
	}
	if sortMemory > 0 {
		// Later settings in PGOPTIONS override earlier ones.
		opts += fmt.Sprintf(" -c maintenance_work_mem=%dkB", (sortMemory+1023)/1024)
	}
	return t.runWithOptions(ctx, "pg_restore", args, target, nil, opts)
}

// tempDir makes a private directory for the schema archive.
func tempDir() (string, func(), error) {
	dir, err := workdir.Make("", "clone")
	if err != nil {
		return "", func() {}, fmt.Errorf("create temporary directory: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// schemaArchive is the path of the schema archive inside dir.
func schemaArchive(dir string) string { return filepath.Join(dir, "schema.dump") }
