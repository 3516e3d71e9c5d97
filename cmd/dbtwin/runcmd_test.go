package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
)

// TestRunExitCodes drives `dbtwin run` on a tiny database and workload:
// exit 0 for a migration the old queries survive, 1 for one that breaks
// them, 2 for a harness failure (and for usage mistakes); the sandbox is
// gone after each, and the GitHub step summary gets the Markdown report.
func TestRunExitCodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL clusters")
	}
	src := localtest.Start(t)
	ctx := context.Background()
	if err := src.CreateDatabase(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	conn, err := src.Conn(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
		INSERT INTO users SELECT i, 'user' || i || '@example.com' FROM generate_series(1, 50) i`)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("workload.jsonl", `{"dbtwin_workload":1,"source":"test"}
{"seq":1,"session":"s1","time":"2026-01-01T00:00:00Z","kind":"connect","database":"app","user":"app"}
{"seq":2,"session":"s1","time":"2026-01-01T00:00:00Z","kind":"statement","sql":"SELECT id FROM users WHERE email = $1","params":[{"value":"user7@example.com"}]}
{"seq":3,"session":"s1","time":"2026-01-01T00:00:01Z","kind":"statement","sql":"SELECT count(*) FROM users"}
{"seq":4,"session":"s1","time":"2026-01-01T00:00:02Z","kind":"statement","sql":"UPDATE users SET email = 'new@example.com' WHERE id = 3"}
{"seq":5,"session":"s1","time":"2026-01-01T00:00:03Z","kind":"disconnect"}
`)
	write("ok/001_add_name.sql", "ALTER TABLE users ADD COLUMN name text;\n")
	write("bad/001_rename_email.sql", "ALTER TABLE users RENAME COLUMN email TO mail;\n")
	config := func(name, source, migrations string) string {
		return write(name+".yaml", fmt.Sprintf(`version: 1
tenants:
  - name: app
    source: %q
migrations:
  dir: %s
  format: plain
workload:
  file: workload.jsonl
`, source, migrations))
	}
	okCfg := config("ok", src.DSN("app"), "ok")
	badCfg := config("bad", src.DSN("app"), "bad")
	ghostCfg := config("ghost", "host=127.0.0.1 port=1 user=nobody dbname=ghost sslmode=disable connect_timeout=2", "ok")

	stateDir, err := os.MkdirTemp("", "dbt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(stateDir) })
	summary := filepath.Join(dir, "step-summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", summary)

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no regression", []string{"run", "-c", okCfg}, 0, "no regressions", "wrote report"},
		{"regressions", []string{"run", "--config", badCfg, "--format", "terminal,json,markdown"}, 1, "42703", ""},
		{"unreachable source", []string{"run", "-c", ghostCfg}, 2, "", "tenant app: clone into the sandbox:"},
		{"missing config", []string{"run", "-c", filepath.Join(dir, "nope.yaml")}, 2, "", "read config"},
		{"unknown tenant", []string{"run", "-c", okCfg, "--tenant", "acme"}, 2, "", `no tenant "acme"`},
		{"bad shard", []string{"run", "-c", okCfg, "--shard", "3/2"}, 2, "", "--shard"},
		{"bad format", []string{"run", "-c", okCfg, "--format", "pdf"}, 2, "", "--format"},
		{"stray argument", []string{"run", okCfg}, 2, "", "unexpected argument"},
		{"help", []string{"run", "--help"}, 0, "Exit code 0: no regression", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(tt.args, "--state-dir", stateDir, "--report-dir", filepath.Join(t.TempDir(), "report"))
			code, stdout, stderr := dbtwin(t, args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
			if recs, err := local.List(stateDir); err != nil || len(recs) != 0 {
				t.Errorf("sandboxes left behind: %v %v", recs, err)
			}
		})
	}

	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatalf("step summary not written: %v", err)
	}
	if !strings.Contains(string(md), "42703") || !strings.Contains(string(md), "no regressions") {
		t.Errorf("step summary lacks the two runs' reports:\n%s", md)
	}
}
