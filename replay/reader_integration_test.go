package replay_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/dbtwin/dbtwin/replay"
	"github.com/jackc/pgx/v5"
)

var captureLogs = flag.Bool("capture-logs", false, "copy the real logs that TestReadersOnRealLogs produces into testdata/logs (then run with -update)")

// step is one event of the workload as the test expects a reader to give it
// back: the spec of what the readers must recover from a real server log.
type step struct {
	session string // label: A, B … in order of first appearance
	kind    replay.Kind
	sql     string
	params  []*string // nil: no parameters
	prep    string    // prepared statement name
	state   string    // SQLSTATE of the captured error, "" for none
	app     string    // application (connect events)
}

func str(s string) *string { return &s }

// expectedWorkload is what runWorkload does, written out by hand.
var expectedWorkload = []step{
	{session: "A", kind: replay.KindConnect, app: "dbtwin-simple"},
	{session: "B", kind: replay.KindConnect, app: "dbtwin-extended"},
	{session: "A", kind: replay.KindStatement, sql: "CREATE TABLE t (id int PRIMARY KEY, name text)"},
	{session: "A", kind: replay.KindStatement, sql: "BEGIN"},
	{session: "A", kind: replay.KindStatement, sql: "INSERT INTO t VALUES (1, 'a')"},
	{session: "B", kind: replay.KindStatement, sql: "INSERT INTO t VALUES ($1, $2)", params: []*string{str("2"), str("it's")}},
	{session: "A", kind: replay.KindStatement, sql: "INSERT INTO t VALUES (1, 'dup')", state: "23505"},
	{session: "A", kind: replay.KindStatement, sql: "ROLLBACK"},
	{session: "B", kind: replay.KindStatement, sql: "INSERT INTO t\nVALUES ($1, $2)", prep: "ins", params: []*string{str("3"), nil}},
	{session: "B", kind: replay.KindStatement, sql: "INSERT INTO t\nVALUES ($1, $2)", prep: "ins", params: []*string{str("4"), str("x\n\ty 'q'")}},
	{session: "B", kind: replay.KindStatement, sql: "BEGIN"},
	{session: "B", kind: replay.KindStatement, sql: "SELECT name FROM t WHERE id = $1", params: []*string{str("2")}},
	{session: "B", kind: replay.KindStatement, sql: "INSERT INTO t\nVALUES ($1, $2)", prep: "ins", params: []*string{str("4"), str("dup")}, state: "23505"},
	{session: "B", kind: replay.KindStatement, sql: "ROLLBACK"},
	{session: "A", kind: replay.KindStatement, sql: "SELECT id,\n       name\n  FROM t\n WHERE name <> 'it''s'\n ORDER BY id"},
	{session: "A", kind: replay.KindStatement, sql: "SELEC 1", state: "42601"},
	{session: "B", kind: replay.KindStatement, sql: "SELECT * FROM missing WHERE id = $1", state: "42P01"},
	{session: "A", kind: replay.KindDisconnect},
	{session: "B", kind: replay.KindDisconnect},
}

// runWorkload runs the workload of expectedWorkload in database "work": A
// speaks the simple protocol, B the extended one (unnamed statements, and
// the prepared statement "ins").
func runWorkload(ctx context.Context, t *testing.T, c *local.Cluster) {
	t.Helper()
	connect := func(app string, mode pgx.QueryExecMode) *pgx.Conn {
		cfg, err := pgx.ParseConfig(c.DSN("work"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.RuntimeParams["application_name"] = app
		cfg.DefaultQueryExecMode = mode
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	a := connect("dbtwin-simple", pgx.QueryExecModeSimpleProtocol)
	b := connect("dbtwin-extended", pgx.QueryExecModeExec)
	ok := func(conn *pgx.Conn, sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	fails := func(conn *pgx.Conn, sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err == nil {
			t.Fatalf("%s: succeeded, want an error", sql)
		}
	}
	ok(a, "CREATE TABLE t (id int PRIMARY KEY, name text)")
	ok(a, "BEGIN")
	ok(a, "INSERT INTO t VALUES (1, 'a')")
	ok(b, "INSERT INTO t VALUES ($1, $2)", 2, "it's")
	fails(a, "INSERT INTO t VALUES (1, 'dup')")
	ok(a, "ROLLBACK")
	// COPY FROM STDIN: the rows are not in the log, so readers skip it.
	if _, err := a.CopyFrom(ctx, pgx.Identifier{"t"}, []string{"id", "name"}, pgx.CopyFromRows([][]any{{100, "copied"}})); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Prepare(ctx, "ins", "INSERT INTO t\nVALUES ($1, $2)"); err != nil {
		t.Fatal(err)
	}
	ok(b, "ins", 3, nil)
	ok(b, "ins", 4, "x\n\ty 'q'")
	ok(b, "BEGIN")
	var name string
	if err := b.QueryRow(ctx, "SELECT name FROM t WHERE id = $1", 2).Scan(&name); err != nil || name != "it's" {
		t.Fatalf("select name: %q, %v", name, err)
	}
	fails(b, "ins", 4, "dup")
	ok(b, "ROLLBACK")
	rows, err := a.Query(ctx, "SELECT id,\n       name\n  FROM t\n WHERE name <> 'it''s'\n ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	fails(a, "SELEC 1")
	fails(b, "SELECT * FROM missing WHERE id = $1", 1)
	// A backend logs its disconnection as it exits, after the client has
	// gone: wait for A's before closing B, so that their order is fixed.
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, c, "dbtwin-simple")
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(ctx, t, c, "dbtwin-extended")
}

// waitGone waits until no backend of application app is left.
func waitGone(ctx context.Context, t *testing.T, c *local.Cluster, app string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for deadline := time.Now().Add(20 * time.Second); ; {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", pgx.QueryExecModeSimpleProtocol, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of %s still there", n, app)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// loggingMode is a way of making the server log statements.
type loggingMode struct {
	name     string
	settings map[string]string
	timed    bool // successful statements have a duration
}

var loggingModes = []loggingMode{
	{"stmt", map[string]string{"log_statement": "all", "log_min_duration_statement": "-1"}, false},
	{"dur", map[string]string{"log_statement": "none", "log_min_duration_statement": "0"}, true},
	{"both", map[string]string{"log_statement": "all", "log_min_duration_statement": "0"}, true},
}

// testPrefix is a log_line_prefix the test runs with; detect says whether
// the reader must find it on its own.
type testPrefix struct {
	name, prefix string
	detect       bool
}

var testPrefixes = []testPrefix{
	{"debian", "%m [%p] %q%u@%d ", true},
	{"pgbadger", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ", true},
	{"custom", "%n [%p] %s %e app=%a %u@%d: ", false},
	{"rds", "%t:%r:%u@%d:[%p]:", true},
	{"azure", "%t-%c-", true},
}

// TestReadersOnRealLogs starts a real server that logs in stderr, csvlog
// and jsonlog at once, runs the workload under every logging mode and
// prefix, and checks that every reader gives back exactly the workload.
func TestReadersOnRealLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Settings given here are on the server's command line, where ALTER
	// SYSTEM cannot override them: only the fixed ones go here.
	c := localtest.Start(t, func(cfg *local.Config) {
		cfg.Settings = map[string]string{
			"logging_collector":  "on",
			"log_destination":    "stderr,csvlog,jsonlog",
			"log_filename":       "postgresql.log",
			"log_rotation_age":   "0",
			"log_rotation_size":  "0",
			"log_connections":    "on",
			"log_disconnections": "on",
			"log_min_messages":   "warning",
			"lc_messages":        "C",
		}
	})
	if err := c.CreateDatabase(ctx, "work"); err != nil {
		t.Fatal(err)
	}
	admin, err := c.Conn(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)

	for _, mode := range loggingModes {
		for _, pfx := range testPrefixes {
			dir := "log-" + mode.name + "-" + pfx.name
			settings := map[string]string{"log_directory": dir, "log_line_prefix": pfx.prefix}
			for k, v := range mode.settings {
				settings[k] = v
			}
			if err := dropTable(ctx, c); err != nil {
				t.Fatal(err)
			}
			reconfigure(ctx, t, c, admin, settings)
			runWorkload(ctx, t, c)
			files := flushLogs(ctx, t, c, admin, dir)

			opts := replay.ReaderOptions{Filter: replay.Filter{Databases: []string{"work"}}}
			if !pfx.detect {
				opts.Prefix = pfx.prefix
			}
			t.Run(mode.name+"/stderr-"+pfx.name, func(t *testing.T) {
				checkLog(t, files["log"], opts, replay.FormatStderr, pfx.prefix, mode.timed, strings.Contains(pfx.prefix, "%e"))
			})
			if pfx.name == testPrefixes[0].name {
				t.Run(mode.name+"/csvlog", func(t *testing.T) {
					checkLog(t, files["csv"], opts, replay.FormatCSVLog, "", mode.timed, true)
				})
				t.Run(mode.name+"/jsonlog", func(t *testing.T) {
					checkLog(t, files["json"], opts, replay.FormatJSONLog, "", mode.timed, true)
				})
			}
			if *captureLogs {
				saveCapturedLogs(t, c, mode, pfx, files)
			}
		}
	}
}

// dropTable removes the workload's table so that the next round starts
// from the same state; it runs before the round's log directory is set.
func dropTable(ctx context.Context, c *local.Cluster) error {
	work, err := pgx.Connect(ctx, c.DSN("work"))
	if err != nil {
		return err
	}
	defer work.Close(ctx)
	_, err = work.Exec(ctx, "DROP TABLE IF EXISTS t")
	return err
}

// reconfigure applies settings with ALTER SYSTEM and waits until new
// sessions and the logging collector use them. It changes the log
// directory last, once the admin session itself logs with the new prefix,
// so that the new log holds only lines in the new format.
func reconfigure(ctx context.Context, t *testing.T, c *local.Cluster, admin *pgx.Conn, settings map[string]string) {
	t.Helper()
	set := func(k, v string) {
		t.Helper()
		if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER SYSTEM SET %s = '%s'", k, strings.ReplaceAll(v, "'", "''")), pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	reload := func(check func() bool) {
		t.Helper()
		if _, err := admin.Exec(ctx, "SELECT pg_reload_conf()", pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); !check(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the server did not take the new logging settings")
			}
		}
	}
	setting := func(conn *pgx.Conn, name string) string {
		t.Helper()
		var v string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", pgx.QueryExecModeSimpleProtocol, name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for k, v := range settings {
		if k != "log_directory" {
			set(k, v)
		}
	}
	reload(func() bool { return setting(admin, "log_line_prefix") == settings["log_line_prefix"] })
	// Lines wait in the collector's pipe: let it write out the old-prefix
	// ones to the old directory before it switches to the new one.
	flushLogs(ctx, t, c, admin, setting(admin, "log_directory"))
	set("log_directory", settings["log_directory"])
	dir := filepath.Join(c.Record().DataDir(), settings["log_directory"])
	reload(func() bool {
		conn, err := c.Conn(ctx, "postgres")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		_, err = os.Stat(filepath.Join(dir, "postgresql.json"))
		return err == nil && setting(conn, "log_directory") == settings["log_directory"]
	})
}

// flushLogs writes a marker and waits until the collector has written it to
// all three logs, then returns their paths by format.
func flushLogs(ctx context.Context, t *testing.T, c *local.Cluster, admin *pgx.Conn, dir string) map[string]string {
	t.Helper()
	marker := fmt.Sprintf("end of %s %d", dir, time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "SELECT '"+marker+"'", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(c.Record().DataDir(), dir, "postgresql.")
	files := map[string]string{"log": base + "log", "csv": base + "csv", "json": base + "json"}
	deadline := time.Now().Add(20 * time.Second)
	for _, f := range files {
		for {
			b, _ := os.ReadFile(f)
			if bytes.Contains(b, []byte(marker)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never got the marker %q; it holds:\n%s", f, marker, b)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return files
}

// checkLog reads a log and compares it with expectedWorkload. hasState:
// the log records SQLSTATEs (csvlog, jsonlog, a prefix with %e); without
// them errors are still recognised, with an empty SQLState.
func checkLog(t *testing.T, path string, opts replay.ReaderOptions, format replay.Format, prefix string, timed, hasState bool) {
	t.Helper()
	ctx := context.Background()
	r, err := replay.Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var events []replay.Event
	for r.Next() {
		events = append(events, r.Event())
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	if st.Format != format || st.Prefix != prefix {
		t.Errorf("format %q prefix %q, want %q %q", st.Format, st.Prefix, format, prefix)
	}
	if st.WarningCount > 0 {
		t.Errorf("%d warnings: %v", st.WarningCount, st.Warnings)
	}
	if n := st.Skipped[replay.SkipCopyFromStdin]; n != 1 {
		t.Errorf("skipped %d COPY FROM STDIN, want 1 (skips: %v)", n, st.Skipped)
	}
	got := describeEvents(events)
	steps := append([]step(nil), expectedWorkload...)
	if !hasState {
		for i := range steps {
			if steps[i].state != "" {
				steps[i].state = "?????"
			}
		}
	}
	want := describeSteps(steps)
	if got != want {
		b, _ := os.ReadFile(path)
		t.Errorf("events differ\n got:\n%s\nwant:\n%s\nlog:\n%s", got, want, b)
		return
	}
	var seq int64
	for i, ev := range events {
		if ev.Seq <= seq {
			t.Errorf("event %d: seq %d after %d", i, ev.Seq, seq)
		}
		seq = ev.Seq
		if ev.Database != "work" || ev.User != local.Superuser {
			t.Errorf("event %d (%s): database %q user %q, want work %s", i, ev.Source, ev.Database, ev.User, local.Superuser)
		}
		if ev.Time.IsZero() || time.Since(ev.Time) > time.Hour {
			t.Errorf("event %d (%s): time %v", i, ev.Source, ev.Time)
		}
		if ev.Kind == replay.KindStatement && timed && ev.Error == nil && ev.Duration <= 0 {
			t.Errorf("event %d (%s): no duration", i, ev.Source)
		}
		if ev.Kind == replay.KindStatement && !timed && ev.Duration != 0 {
			t.Errorf("event %d (%s): duration %v without duration logging", i, ev.Source, ev.Duration)
		}
	}
}

// describeEvents renders events in the shape of describeSteps, with
// sessions relabelled A, B … in order of first appearance.
func describeEvents(events []replay.Event) string {
	labels := map[string]string{}
	var b strings.Builder
	for _, ev := range events {
		l, ok := labels[ev.Session]
		if !ok {
			l = string(rune('A' + len(labels)))
			labels[ev.Session] = l
		}
		s := step{session: l, kind: ev.Kind, sql: ev.SQL, prep: ev.Prepared}
		if ev.Kind == replay.KindConnect {
			s.app = ev.Application
		}
		for _, p := range ev.Params {
			s.params = append(s.params, p.Value)
		}
		if ev.Error != nil {
			s.state = ev.Error.SQLState
			if s.state == "" {
				s.state = "?????"
			}
		}
		b.WriteString(describeStep(s))
	}
	return b.String()
}

func describeSteps(steps []step) string {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(describeStep(s))
	}
	return b.String()
}

func describeStep(s step) string {
	out := fmt.Sprintf("%s %-10s", s.session, s.kind)
	if s.app != "" {
		out += " app=" + s.app
	}
	if s.sql != "" {
		out += fmt.Sprintf(" %q", s.sql)
	}
	if s.prep != "" {
		out += " prepared=" + s.prep
	}
	if s.params != nil {
		var ps []string
		for _, p := range s.params {
			if p == nil {
				ps = append(ps, "NULL")
			} else {
				ps = append(ps, fmt.Sprintf("%q", *p))
			}
		}
		out += " params=[" + strings.Join(ps, " ") + "]"
	}
	if s.state != "" {
		out += " error=" + s.state
	}
	return out + "\n"
}

// capturedLogs are the rounds whose logs -capture-logs saves as golden
// inputs: every format and mode appears at least once.
var capturedLogs = map[string][]string{
	"stmt/debian":  {"log", "csv"},
	"dur/pgbadger": {"log", "json"},
	"both/custom":  {"log", "csv", "json"},
	"both/rds":     {"log"},
	"stmt/azure":   {"log"},
}

func saveCapturedLogs(t *testing.T, c *local.Cluster, mode loggingMode, pfx testPrefix, files map[string]string) {
	kinds := capturedLogs[mode.name+"/"+pfx.name]
	for _, k := range kinds {
		b, err := os.ReadFile(files[k])
		if err != nil {
			t.Fatal(err)
		}
		var name string
		switch k {
		case "log":
			name = fmt.Sprintf("stderr-%s-%s.log", pfx.name, mode.name)
			if !pfx.detect {
				if err := os.WriteFile(filepath.Join("testdata", "logs", name+".prefix"), []byte(pfx.prefix+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		case "csv":
			name = fmt.Sprintf("csvlog-%s.csv", mode.name)
		case "json":
			name = fmt.Sprintf("jsonlog-%s.json", mode.name)
		}
		if err := os.MkdirAll(filepath.Join("testdata", "logs"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "logs", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_ = c
}
