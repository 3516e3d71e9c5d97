package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/dbtwin/dbtwin/compare"
	"github.com/dbtwin/dbtwin/fixtures"
	"github.com/dbtwin/dbtwin/replay"
	"github.com/jackc/pgx/v5"
)

// runFixture is a "production" cluster with the fixture tenants and a
// workload of the fixture app captured through the capture proxy.
type runFixture struct {
	prod     *local.Cluster
	dir      string
	workload string
	rules    string
	emails   []string // every users.email of the acme source
}

// setupRunFixture generates two tiny fixture tenants and captures the
// fixture application's workload. The capture runs on a template copy of
// acme made first, so the sources the runs clone are in the state from
// before the workload, as production was when the workload began (a real
// capture runs on production while it changes; the copy keeps the test
// deterministic).
func setupRunFixture(t *testing.T) *runFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := &runFixture{prod: localtest.Start(t), dir: t.TempDir()}
	if _, err := fixtures.Generate(ctx, f.prod.DSN("postgres"), fixtures.Config{Tenants: 2, Scale: 0.002, Seed: 1}); err != nil {
		t.Fatalf("generate fixtures: %v", err)
	}
	if err := f.prod.CreateDatabaseFromTemplate(ctx, "capture", "tenant_acme"); err != nil {
		t.Fatal(err)
	}

	// Capture: the fixture app through the proxy, upstream over the
	// cluster's Unix socket.
	f.workload = filepath.Join(f.dir, "workload.jsonl")
	out, err := os.Create(f.workload)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	p := &replay.Proxy{Upstream: f.prod.DSN("capture"), Out: out}
	done := make(chan error, 1)
	go func() { done <- p.Serve(pctx, ln) }()
	client := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=capture sslmode=disable", ln.Addr().(*net.TCPAddr).Port, local.Superuser)
	appErr := fixtures.SimulateApp(ctx, client, fixtures.AppConfig{Sessions: 3, Actions: 40, Seed: 7})
	stop()
	if err := <-done; err != nil {
		t.Fatalf("capture proxy: %v", err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if appErr != nil {
		t.Fatalf("simulate the fixture app: %v", appErr)
	}
	if st := p.Stats(); st.Statements < 100 {
		t.Fatalf("captured only %d statements", st.Statements)
	}

	f.rules = filepath.Join(f.dir, "masking.yaml")
	if err := os.WriteFile(f.rules, fixtures.MaskingRules(), 0o644); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, f.prod.DSN("tenant_acme"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, "SELECT email::text FROM users")
	if f.emails, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(f.emails) == 0 {
		t.Fatalf("read source emails: %d, %v", len(f.emails), err)
	}
	return f
}

// config writes a dbtwin.yaml for the fixture and loads it.
func (f *runFixture) config(t *testing.T, migrations string, masking bool, tenants ...string) *Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\ntenants:\n")
	for _, name := range tenants {
		src := f.prod.DSN("tenant_" + name)
		if name == "ghost" {
			src = "host=127.0.0.1 port=1 user=nobody dbname=ghost sslmode=disable connect_timeout=2"
		}
		fmt.Fprintf(&b, "  - name: %s\n    source: %q\n", name, src)
	}
	if masking {
		fmt.Fprintf(&b, "masking:\n  rules: %s\n", f.rules)
	}
	dir, err := filepath.Abs(filepath.Join("..", "fixtures", "migrations", migrations))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "migrations:\n  dir: %s\n", dir)
	fmt.Fprintf(&b, "workload:\n  file: %s\n", f.workload)
	// The test shares two cores with other work: a latency regression
	// needs 50 ms more, so scheduling hiccups do not fail it.
	b.WriteString("compare:\n  latency:\n    floor: 50ms\n")
	b.WriteString("report:\n  formats: [json, markdown, junit, html]\n")
	path := filepath.Join(t.TempDir(), "dbtwin.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("load config: %v\n%s", err, b.String())
	}
	return cfg
}

// runOpts are options for a test run with its own state directory, so the
// test can check that the sandbox is gone afterwards.
func runOpts(t *testing.T) RunOptions {
	return RunOptions{
		StateDir:  shortTempDir(t),
		ReportDir: filepath.Join(t.TempDir(), "report"),
		Jobs:      2,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Version:   "test",
	}
}

// shortTempDir is a temporary directory with a short path: a sandbox's
// Unix socket lives under it (t.TempDir() can be too deep).
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "dbt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// checkNoSandbox fails when a sandbox is left in stateDir.
func checkNoSandbox(t *testing.T, stateDir string) {
	t.Helper()
	recs, err := local.List(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 0 {
		t.Errorf("%d sandbox(es) left behind in %s: %+v", len(recs), stateDir, recs)
	}
}

// TestRun runs the whole pipeline on the fixtures: safe migrations pass,
// breaking ones are caught by name, masking covers the workload as well
// as the data, and a harness failure leaves no sandbox behind.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL clusters")
	}
	f := setupRunFixture(t)

	t.Run("safe migrations pass", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		opts := runOpts(t)
		opts.Parallel = 2
		rep, err := Run(ctx, f.config(t, "safe", false, "acme", "globex"), opts)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		checkNoSandbox(t, opts.StateDir)
		if rep.Verdict.Regressions {
			t.Errorf("safe migrations flagged: %s %v", rep.Verdict.Headline, rep.Verdict.Reasons)
			for _, tr := range rep.Tenants {
				for _, fd := range tr.Findings {
					if fd.Regression {
						t.Logf("%s: %s %s %+v", tr.Tenant, fd.Class, fd.Example.SQL, fd.Example.Candidate)
					}
				}
				t.Logf("%s final state: %+v", tr.Tenant, tr.FinalState)
			}
		}
		if len(rep.Tenants) != 2 {
			t.Fatalf("want 2 tenants in the report, got %d", len(rep.Tenants))
		}
		acme := rep.Tenants[0]
		if acme.Tenant != "acme" || acme.Summary.Statements < 100 {
			t.Errorf("acme: %d statements compared, want the captured workload", acme.Summary.Statements)
		}
		if acme.Migration == nil || len(acme.Migration.Migrations) != 6 {
			t.Errorf("migration report not attached: %+v", acme.Migration)
		}
		// The fixture app's now() in UPDATE users makes baseline and
		// candidate differ; the control shows it is noise.
		noise := false
		for _, d := range acme.FinalState {
			if d.Table == "users" && d.AlsoInControl {
				noise = true
			}
		}
		if !noise {
			t.Errorf("users.last_login_at = now() not reported as final-state noise: %+v", acme.FinalState)
		}
		if !hasNote(rep, "users compared on the") {
			t.Errorf("the added column preferred_language is not noted: %q", rep.Meta.Notes)
		}
		for _, p := range []string{"report.json", "report.md", "junit.xml", "report.html", "acme/results-baseline.jsonl", "globex/results-control.jsonl"} {
			if _, err := os.Stat(filepath.Join(opts.ReportDir, p)); err != nil {
				t.Errorf("report file: %v", err)
			}
		}
	})

	t.Run("breaking migrations are caught", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		opts := runOpts(t)
		opts.Tenant = "acme"
		rep, err := Run(ctx, f.config(t, "breaking", false, "acme", "globex"), opts)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		checkNoSandbox(t, opts.StateDir)
		if !rep.Verdict.Regressions || rep.Verdict.ExitCode != 1 {
			t.Fatalf("breaking migrations not flagged: %+v", rep.Verdict)
		}
		if len(rep.Tenants) != 1 || rep.Tenants[0].Tenant != "acme" {
			t.Fatalf("--tenant acme ran %d tenants", len(rep.Tenants))
		}
		// The rename comes first, so every old query naming users.email
		// (the sign-ups too) fails with 42703, and so do those reading
		// orders.notes.
		codes := newErrors(rep.Tenants[0])
		all := strings.Join(codes["42703"], "\n")
		if !strings.Contains(all, "WHERE email = $1") || !strings.Contains(all, "o.notes") {
			t.Errorf("42703 findings do not name the email lookups and the notes query: %q", codes["42703"])
		}
		if rep.Tenants[0].Summary.LintErrors == 0 {
			t.Errorf("lint found nothing in the breaking set")
		}
		md, err := os.ReadFile(filepath.Join(opts.ReportDir, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"42703", "DT010"} {
			if !bytes.Contains(md, []byte(want)) {
				t.Errorf("report.md does not name %s", want)
			}
		}
	})

	t.Run("a NOT NULL column breaks the old sign-up", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// The breaking set without the rename, so the old INSERTs reach the
		// new NOT NULL column.
		dir := t.TempDir()
		src := filepath.Join("..", "fixtures", "migrations", "breaking")
		for _, name := range []string{"000002_users_signup_source_not_null.up.sql", "000005_drop_orders_notes.up.sql"} {
			data, err := os.ReadFile(filepath.Join(src, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cfg := f.config(t, "breaking", false, "acme")
		cfg.Migrations.Dir = dir
		opts := runOpts(t)
		rep, err := Run(ctx, cfg, opts)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		checkNoSandbox(t, opts.StateDir)
		codes := newErrors(rep.Tenants[0])
		if !strings.Contains(strings.Join(codes["23502"], "\n"), "INSERT INTO users") {
			t.Errorf("no new error 23502 for the old sign-up INSERT: %v", codes)
		}
		if !strings.Contains(strings.Join(codes["42703"], "\n"), "o.notes") {
			t.Errorf("no new error 42703 for the query reading orders.notes: %v", codes)
		}
		md, err := os.ReadFile(filepath.Join(opts.ReportDir, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(md, []byte("23502")) {
			t.Errorf("report.md does not name 23502")
		}
	})

	t.Run("masking covers data and workload", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		t.Setenv(MaskKeyEnv, "test-key-0123456789abcdef")
		opts := runOpts(t)
		opts.Shard = Shard{Index: 1, Count: 2} // acme only
		rep, err := Run(ctx, f.config(t, "safe", true, "acme", "globex"), opts)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		checkNoSandbox(t, opts.StateDir)
		if len(rep.Tenants) != 1 || rep.Tenants[0].Tenant != "acme" {
			t.Fatalf("shard 1/2 ran %d tenants", len(rep.Tenants))
		}
		if rep.Verdict.Regressions {
			t.Errorf("masked safe run flagged: %v", rep.Verdict.Reasons)
		}
		checkNoLeak(t, opts.ReportDir, f.emails)
		// The login lookups by (masked) email still find their users.
		logins, found := loginLookups(t, filepath.Join(opts.ReportDir, "acme", "results-baseline.jsonl"))
		if logins == 0 || found != logins {
			t.Errorf("login lookups by email on the masked baseline: %d of %d found a row", found, logins)
		}
	})

	t.Run("server backend, masked dump", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		t.Setenv(MaskKeyEnv, "test-key-0123456789abcdef")
		dump := filepath.Join(t.TempDir(), "acme.dump")
		out, err := exec.CommandContext(ctx, filepath.Join(f.prod.BinDir(), "pg_dump"), "-Fc", "-f", dump, "-d", f.prod.DSN("tenant_acme")).CombinedOutput()
		if err != nil {
			t.Fatalf("pg_dump: %v\n%s", err, out)
		}
		cfg := f.config(t, "safe", true, "acme")
		cfg.Tenants[0] = TenantConfig{Name: "acme", Dump: dump}
		cfg.Sandbox = SandboxConfig{Backend: "server", DSN: f.prod.DSN("postgres")}
		opts := runOpts(t)
		rep, err := Run(ctx, cfg, opts)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if rep.Verdict.Regressions {
			t.Errorf("masked dump with safe migrations flagged: %v", rep.Verdict.Reasons)
		}
		checkNoLeak(t, opts.ReportDir, f.emails)
		logins, found := loginLookups(t, filepath.Join(opts.ReportDir, "acme", "results-baseline.jsonl"))
		if logins == 0 || found != logins {
			t.Errorf("login lookups by email on the masked baseline: %d of %d found a row", found, logins)
		}
		// Only this run's databases were made on the server, and they are
		// gone.
		conn, err := pgx.Connect(ctx, f.prod.DSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var left []string
		rows, _ := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE 'dbtwin%'")
		if left, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(left) > 0 {
			t.Errorf("databases left on the server: %v %v", left, err)
		}
	})

	t.Run("empty shard", func(t *testing.T) {
		opts := runOpts(t)
		opts.Shard = Shard{Index: 3, Count: 3} // two tenants: shard 3 has none
		rep, err := Run(context.Background(), f.config(t, "safe", false, "acme", "globex"), opts)
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if len(rep.Tenants) != 0 || rep.Verdict.Regressions || !hasNote(rep, "shard 3/3 has no tenant") {
			t.Errorf("empty shard report: %+v", rep)
		}
		if _, err := os.Stat(filepath.Join(opts.ReportDir, "report.json")); err != nil {
			t.Errorf("no shard report to merge: %v", err)
		}
	})

	t.Run("harness error tears the sandbox down", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		opts := runOpts(t)
		_, err := Run(ctx, f.config(t, "safe", false, "ghost"), opts)
		if err == nil {
			t.Fatal("run with an unreachable source succeeded")
		}
		if !strings.Contains(err.Error(), "tenant ghost: clone into the sandbox:") {
			t.Errorf("error does not say which tenant and stage: %v", err)
		}
		checkNoSandbox(t, opts.StateDir)
	})

	t.Run("cancel tears the sandbox down", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		opts := runOpts(t)
		h := &cancelOn{Handler: opts.Logger.Handler(), msg: "stage started", stage: "replay_candidate", cancel: cancel}
		opts.Logger = slog.New(h)
		_, err := Run(ctx, f.config(t, "safe", false, "acme"), opts)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled run: want context.Canceled, got %v", err)
		}
		checkNoSandbox(t, opts.StateDir)
	})
}

// cancelOn cancels when a log record with the message and stage appears.
type cancelOn struct {
	slog.Handler
	msg, stage string
	cancel     context.CancelFunc
}

func (c *cancelOn) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == c.msg {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "stage" && a.Value.String() == c.stage {
				c.cancel()
			}
			return true
		})
	}
	return c.Handler.Handle(ctx, r)
}

func (c *cancelOn) WithAttrs(as []slog.Attr) slog.Handler {
	return &cancelOn{Handler: c.Handler.WithAttrs(as), msg: c.msg, stage: c.stage, cancel: c.cancel}
}

func hasNote(rep *compare.Report, sub string) bool {
	for _, n := range rep.Meta.Notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

// newErrors maps SQLSTATE → example SQL of the regressed new-error
// findings.
func newErrors(t compare.TenantReport) map[string][]string {
	out := map[string][]string{}
	for _, f := range t.Findings {
		if f.Regression && f.Class == compare.NewError {
			out[f.Example.Candidate.SQLState] = append(out[f.Example.Candidate.SQLState], f.Example.SQL)
		}
	}
	return out
}

// checkNoLeak fails when a file under dir (reports, results) holds one of
// the source's values.
func checkNoLeak(t *testing.T, dir string, values []string) {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) < 5 {
		t.Fatalf("report files: %v %v", files, err)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			if bytes.Contains(data, []byte(v)) {
				t.Errorf("%s holds the source's value %s", p, v)
			}
		}
	}
}

// loginLookups counts the fixture app's log-in lookups by e-mail in a
// results file, and those that found their user.
func loginLookups(t *testing.T, path string) (n, found int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rr, err := replay.NewResultsReader(f)
	if err != nil {
		t.Fatal(err)
	}
	for rr.Next() {
		r := rr.Result()
		if strings.Contains(r.SQL, "FROM users WHERE email = $1") && r.Status == replay.StatusOK {
			n++
			if r.Rows > 0 {
				found++
			}
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	return n, found
}

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"": {}, "1/1": {1, 1}, "2/4": {2, 4}, " 3 / 3 ": {3, 3}} {
		got, err := ParseShard(in)
		if err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0/2", "3/2", "1/0", "2", "a/b", "-1/2"} {
		if _, err := ParseShard(in); err == nil {
			t.Errorf("ParseShard(%q) accepted", in)
		}
	}
	s := Shard{Index: 2, Count: 3}
	var got []int
	for i := range 8 {
		if s.includes(i) {
			got = append(got, i)
		}
	}
	if fmt.Sprint(got) != "[1 4 7]" {
		t.Errorf("shard 2/3 of 8 tenants: positions %v, want [1 4 7]", got)
	}
}

// TestCompareConfigDefaults: keys the compare section does not give keep
// compare.DefaultConfig's values.
func TestCompareConfigDefaults(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"w.jsonl", "m/x"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const base = "version: 1\ntenants: [{name: a, source: 'dbname=a'}]\nmigrations: {dir: m}\nworkload: {file: w.jsonl}\n"
	for name, tt := range map[string]struct {
		yaml    string
		check   func(c compare.Config) bool
		wantErr string
	}{
		"none": {base, func(c compare.Config) bool { return c.Latency.Ratio == 2 && c.PairWindow == compare.DefaultPairWindow }, ""},
		"partial": {base + "compare:\n  latency: {floor: 50ms}\n", func(c compare.Config) bool {
			return c.Latency.Floor == 50*time.Millisecond && c.Latency.Ratio == 2 && c.Latency.Gate == "p50"
		}, ""},
		"invalid": {base + "compare:\n  latency: {ratio: 0.5}\n", nil, "dbtwin.yaml:5: compare: validate compare config: latency.ratio"},
	} {
		cfg, err := ParseConfig(filepath.Join(dir, "dbtwin.yaml"), []byte(tt.yaml))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c, err := cfg.compareConfig()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !tt.check(c) {
			t.Errorf("%s: %+v, %v", name, c, err)
		}
	}
}
