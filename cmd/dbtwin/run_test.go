package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5"
)

// dbtwin runs the CLI in-process and returns its exit code and output.
func dbtwin(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no args", nil, 2, "Commands:", ""},
		{"help", []string{"--help"}, 0, "Exit codes:", ""},
		{"help command", []string{"help", "clone"}, 0, "--source", ""},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{"clone help", []string{"clone", "--help"}, 0, "consistent copy", ""},
		{"clone without source", []string{"clone", "--target", "dbname=x"}, 2, "", "--source is required"},
		{"clone without target", []string{"clone", "--source", "dbname=x"}, 2, "", "--target is required"},
		{"clone bad jobs", []string{"clone", "--source", "dbname=x", "--target", "dbname=y", "--jobs", "0"}, 2, "", "--jobs must be at least 1"},
		{"clone source neither", []string{"clone", "--source", "/no/such/file.dump", "--target", "dbname=y"}, 2, "", "neither a connection string"},
		{"clone unknown flag", []string{"clone", "--frob"}, 2, "", "unknown flag: --frob"},
		{"fixtures no sub", []string{"fixtures"}, 2, "", "fixtures gen"},
		{"fixtures gen no target", []string{"fixtures", "gen"}, 2, "", "--target is required"},
		{"fixtures gen bad scale", []string{"fixtures", "gen", "--target", "dbname=x", "--scale", "-1"}, 2, "", "--scale must be greater than 0"},
		{"fixtures gen bad tenants", []string{"fixtures", "gen", "--target", "dbname=x", "--tenants", "0"}, 2, "", "--tenants must be at least 1"},
		{"sandbox no sub", []string{"sandbox"}, 2, "up|ls|down|gc", "missing subcommand"},
		{"sandbox bad sub", []string{"sandbox", "explode"}, 2, "", `unknown subcommand "explode"`},
		{"sandbox down no name", []string{"sandbox", "down"}, 2, "", "name at least one sandbox"},
		{"demo bad log level", []string{"demo", "--log-level", "loud"}, 2, "", "--log-level"},
		{"version", []string{"version"}, 0, "dbtwin ", ""},
		{"migrate lint breaking", []string{"migrate", "lint", "../../fixtures/migrations/breaking"}, 1, "DT010 error", ""},
		{"migrate lint safe", []string{"migrate", "lint", "../../fixtures/migrations/safe"}, 0, "0 errors, 0 warnings", ""},
		{"migrate lint warnings fail", []string{"migrate", "lint", "--fail-on", "warning", "--disable", "DT001,DT003,DT010", "../../fixtures/migrations/breaking"}, 1, "0 errors", ""},
		{"migrate lint json", []string{"migrate", "lint", "--json", "../../fixtures/migrations/safe"}, 0, "[", ""},
		{"migrate lint no dir", []string{"migrate", "lint"}, 2, "", "name one migration directory"},
		{"migrate lint missing dir", []string{"migrate", "lint", "/no/such/migrations"}, 2, "", "/no/such/migrations"},
		{"migrate lint bad fail-on", []string{"migrate", "lint", "--fail-on", "panic", "."}, 2, "", "--fail-on"},
		{"workload no sub", []string{"workload"}, 2, "", "workload convert"},
		{"workload convert bad from", []string{"workload", "convert", "--in", "x", "--out", "y", "--from", "yesterday"}, 2, "", "--from \"yesterday\""},
		{"mask no sub", []string{"mask"}, 2, "scan|apply|workload", "missing subcommand"},
		{"mask scan no source", []string{"mask", "scan"}, 2, "", "--source is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := dbtwin(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
		})
	}
}

// TestCloneEndToEnd drives `dbtwin fixtures gen` and `dbtwin clone` through
// the CLI against a real sandbox, including the bad inputs the issue names:
// each gives a clear message, exit code 2 and no leftover database.
func TestCloneEndToEnd(t *testing.T) {
	c := localtest.Start(t, localtest.WithTCP)
	ctx := context.Background()
	server := c.DSN("postgres")

	code, stdout, stderr := dbtwin(t, "fixtures", "gen", "--target", server, "--tenants", "1", "--scale", "0.002", "--seed", "7", "--log-level", "warn")
	if code != 0 {
		t.Fatalf("fixtures gen: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "tenant_acme") {
		t.Fatalf("fixtures gen output lacks the tenant:\n%s", stdout)
	}
	// Generating again without --replace refuses and names the way out.
	code, _, stderr = dbtwin(t, "fixtures", "gen", "--target", server, "--tenants", "1", "--scale", "0.002", "--log-level", "warn")
	if code != 2 || !strings.Contains(stderr, "--replace") {
		t.Fatalf("second fixtures gen: exit %d, stderr %q; want 2 and a hint to --replace", code, stderr)
	}

	code, stdout, stderr = dbtwin(t, "clone", "--source", c.DSN("tenant_acme"), "--target", c.DSN("acme_clone"), "--jobs", "2", "--log-level", "warn")
	if code != 0 {
		t.Fatalf("clone: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "cloned ") || !strings.Contains(stdout, "rows") {
		t.Errorf("clone summary missing:\n%s", stdout)
	}

	dumpDir := t.TempDir()
	corrupt := filepath.Join(dumpDir, "corrupt.dump")
	if err := os.WriteFile(corrupt, []byte("PGDMP\x01\x0e\x00garbage that is not an archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	wrongPassword := strings.Replace(c.TCPDSN("tenant_acme"), "password=", "password=not", 1)

	bad := []struct {
		name       string
		args       []string
		wantStderr []string
	}{
		{"unreachable host", []string{"--source", "host=127.0.0.1 port=1 dbname=app user=x connect_timeout=3", "--target", c.DSN("bad1")}, []string{"source", "127.0.0.1:1"}},
		{"wrong password", []string{"--source", wrongPassword, "--target", c.DSN("bad2")}, []string{"password authentication failed"}},
		{"missing database", []string{"--source", c.DSN("no_such_db"), "--target", c.DSN("bad3")}, []string{"no_such_db"}},
		{"corrupt dump", []string{"--source", corrupt, "--target", c.DSN("bad4")}, []string{"corrupt.dump"}},
		{"non-empty target", []string{"--source", c.DSN("tenant_acme"), "--target", c.DSN("acme_clone")}, []string{"not empty", "--replace"}},
		{"missing pg_dump", []string{"--source", c.DSN("tenant_acme"), "--target", c.DSN("bad5"), "--pg-bindir", t.TempDir()}, []string{"--pg-bindir"}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			args := append([]string{"clone", "--log-level", "error"}, b.args...)
			code, _, stderr := dbtwin(t, args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2; stderr:\n%s", code, stderr)
			}
			for _, w := range b.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "password=not") {
				t.Errorf("stderr leaks the password:\n%s", stderr)
			}
		})
	}
	if leftover := databases(t, ctx, server, "bad%"); leftover != "" {
		t.Errorf("bad inputs left databases behind: %s", leftover)
	}
	if leftover := databases(t, ctx, server, "%dbtwin_tmp%"); leftover != "" {
		t.Errorf("temporary databases left behind: %s", leftover)
	}

	// --replace overwrites the non-empty target.
	code, _, stderr = dbtwin(t, "clone", "--source", c.DSN("tenant_acme"), "--target", c.DSN("acme_clone"), "--replace", "--log-level", "warn")
	if code != 0 {
		t.Fatalf("clone --replace: exit %d\n%s", code, stderr)
	}
}

func TestSandboxCommands(t *testing.T) {
	stateDir := localtest.StateDir(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // what gc sweeps
	code, stdout, stderr := dbtwin(t, "sandbox", "ls", "--state-dir", stateDir)
	if code != 0 || !strings.Contains(stdout, "no sandboxes") {
		t.Fatalf("sandbox ls on an empty state dir: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, stdout, stderr = dbtwin(t, "sandbox", "up", "--db", "scratch", "--state-dir", stateDir, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("sandbox up: exit %d\n%s", code, stderr)
	}
	name := strings.Fields(strings.TrimPrefix(stdout, "sandbox "))[0]
	if !strings.HasPrefix(name, "dbtwin-") {
		t.Fatalf("sandbox up printed no name:\n%s", stdout)
	}
	recs, err := local.List(stateDir)
	if err != nil || len(recs) != 1 {
		t.Fatalf("want one record after sandbox up, got %d (%v)", len(recs), err)
	}
	dsn := strings.Trim(strings.TrimSpace(strings.SplitN(strings.SplitN(stdout, "psql ", 2)[1], "\n", 2)[0]), `"`)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("connect with the printed command's DSN %q: %v", dsn, err)
	}
	conn.Close(context.Background())

	code, stdout, _ = dbtwin(t, "sandbox", "ls", "--state-dir", stateDir)
	if code != 0 || !strings.Contains(stdout, name) || !strings.Contains(stdout, "kept") {
		t.Fatalf("sandbox ls does not show the kept sandbox:\n%s", stdout)
	}
	// gc leaves a kept sandbox alone.
	code, stdout, _ = dbtwin(t, "gc", "--state-dir", stateDir)
	if code != 0 || !strings.Contains(stdout, "nothing to remove") {
		t.Fatalf("gc touched a kept sandbox:\n%s", stdout)
	}
	// gc removes the scratch directory of a dbtwin process that is gone
	// (a killed run's), and still not the kept sandbox.
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	abandoned := filepath.Join(tmp, fmt.Sprintf("dbtwin-run-x1-pid%d-42", exited.Process.Pid))
	if err := os.MkdirAll(filepath.Join(abandoned, "workload.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = dbtwin(t, "gc", "--state-dir", stateDir)
	if _, err := os.Stat(abandoned); code != 0 || !os.IsNotExist(err) || !strings.Contains(stdout, "removed scratch directory "+abandoned) || strings.Contains(stdout, name) {
		t.Fatalf("gc did not remove only the abandoned scratch directory (exit %d, stat %v):\n%s", code, err, stdout)
	}
	code, stdout, stderr = dbtwin(t, "sandbox", "down", name, "--state-dir", stateDir)
	if code != 0 || !strings.Contains(stdout, "removed "+name) {
		t.Fatalf("sandbox down: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = dbtwin(t, "sandbox", "down", name, "--state-dir", stateDir)
	if code != 2 || !strings.Contains(stderr, "sandbox ls") {
		t.Fatalf("sandbox down of a removed sandbox: exit %d, stderr %q", code, stderr)
	}
}

func databases(t *testing.T, ctx context.Context, dsn, like string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, "SELECT coalesce(string_agg(datname, ', '), '') FROM pg_database WHERE datname LIKE $1", like).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDemo runs `dbtwin demo` at a tiny scale: the whole pipeline runs for
// both fixture releases, the demo's self-check passes (the safe release is
// clean, the breaking one caught), the reports exist and no sandbox is left.
func TestDemo(t *testing.T) {
	stateDir := localtest.StateDir(t)
	reportDir := t.TempDir()
	code, stdout, stderr := dbtwin(t, "demo", "--scale", "0.003", "--tenants", "3", "--actions", "30",
		"--state-dir", stateDir, "--report-dir", reportDir, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// The default releases: safe passes, the next release shows exactly
	// its three regressions on acme, where the workload was captured.
	for _, want := range []string{"acme", "globex", "initech", "statements of the fixture app captured",
		"release safe:     no regressions — as expected", "release release:", "acme: 3 regressions: new error (42703 ",
		"), different rows (", "), slower (p50 "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "NOT AS EXPECTED") || strings.Contains(stdout, "release breaking:") {
		t.Errorf("the demo's verdicts are not the expected ones (or it ran the breaking release):\n%s", stdout)
	}
	for _, f := range []string{"safe/report.html", "release/report.md", "release/junit.xml", "release/acme/results-candidate.jsonl"} {
		if _, err := os.Stat(filepath.Join(reportDir, f)); err != nil {
			t.Errorf("demo report %s: %v", f, err)
		}
	}
	recs, err := local.List(stateDir)
	if err != nil || len(recs) != 0 {
		t.Errorf("demo left %d sandboxes behind (%v)", len(recs), err)
	}
}
