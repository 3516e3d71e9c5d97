package migrate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/lint/*/expected.golden")

// lintCase lints one testdata/lint/<case> directory: its migrations, the
// captured workload in queries.txt (one statement per line) and the
// options in options.json, if present.
func lintCase(t *testing.T, dir string) Findings {
	t.Helper()
	var opts LintOptions
	if b, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
		var o struct {
			ServerMajor int `json:"server_major"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s/options.json: %v", dir, err)
		}
		opts.ServerMajor = o.ServerMajor
	}
	if f, err := os.Open(filepath.Join(dir, "queries.txt")); err == nil {
		var qs []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			qs = append(qs, sc.Text())
		}
		f.Close()
		opts.Workload = NewWorkload(slices.Values(qs))
	}
	fs, err := LintDir(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestLintGolden checks every case's text output against expected.golden
// (go test ./migrate -update rewrites them; a mismatch leaves
// expected.got next to it). A dtNNN case must fire rule DTNNN; the clean
// case must have no finding.
func TestLintGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/lint/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no lint cases: %v", err)
	}
	fired := map[string]bool{}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			fs := lintCase(t, dir)
			var buf bytes.Buffer
			if err := fs.WriteText(&buf); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join(dir, "expected.golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./migrate -update)", err)
			}
			got := filepath.Join(dir, "expected.got")
			if !bytes.Equal(buf.Bytes(), want) {
				_ = os.WriteFile(got, buf.Bytes(), 0o644)
				t.Errorf("output differs from %s; see %s (diff them, or rerun with -update)", golden, got)
			} else {
				_ = os.Remove(got)
			}
			for _, f := range fs {
				fired[f.Rule] = true
			}
			if id, ok := strings.CutPrefix(name, "dt"); ok {
				rule := "DT" + id[:3]
				n := 0
				for _, f := range fs {
					if f.Rule == rule {
						n++
					}
				}
				if n == 0 {
					t.Errorf("rule %s did not fire", rule)
				}
			}
			if name == "clean" && len(fs) != 0 {
				t.Errorf("clean case has %d findings", len(fs))
			}
		})
	}
	for _, r := range Rules() {
		if !fired[r.ID] {
			t.Errorf("no lint case fires %s (%s)", r.ID, r.Name)
		}
	}
}

func TestLintWorkloadNamesBrokenQueries(t *testing.T) {
	fs := lintCase(t, "testdata/lint/workload")
	byRule := map[string][]Finding{}
	for _, f := range fs {
		byRule[f.Rule] = append(byRule[f.Rule], f)
	}
	tests := []struct {
		rule     string
		severity Severity
		queries  []string // prefixes of the broken queries' SQL
	}{
		{"DT010", SeverityError, []string{"SELECT id, email, full_name FROM users", "INSERT INTO users (account_id, email", "SELECT u.id FROM users u WHERE lower(u.email)"}},
		{"DT011", SeverityError, []string{"SELECT id, subject FROM support_tickets", "UPDATE support_tickets"}},
		{"DT019", SeverityError, []string{"INSERT INTO users"}},
	}
	for _, tt := range tests {
		fs := byRule[tt.rule]
		if len(fs) != 1 {
			t.Errorf("%s: %d findings, want 1", tt.rule, len(fs))
			continue
		}
		if fs[0].Severity != tt.severity {
			t.Errorf("%s: severity %s, want %s", tt.rule, fs[0].Severity, tt.severity)
		}
		if len(fs[0].Queries) != len(tt.queries) {
			t.Errorf("%s: queries %+v, want %d", tt.rule, fs[0].Queries, len(tt.queries))
		}
		for _, want := range tt.queries {
			found := false
			for _, q := range fs[0].Queries {
				found = found || strings.HasPrefix(q.SQL, want)
			}
			if !found {
				t.Errorf("%s: no broken query starts with %q in %+v", tt.rule, want, fs[0].Queries)
			}
		}
	}
	// The two "SELECT … WHERE id = N" differ only in a constant: one
	// fingerprint, counted twice.
	for _, q := range byRule["DT010"][0].Queries {
		if strings.HasPrefix(q.SQL, "SELECT id, email, full_name") && q.Count != 2 {
			t.Errorf("fingerprint group count = %d, want 2", q.Count)
		}
	}
	// DROP COLUMN orders.notes: the explicit reader and SELECT *.
	var drops []Finding
	for _, f := range byRule["DT008"] {
		drops = append(drops, f)
	}
	if len(drops) != 2 {
		t.Fatalf("DT008 findings = %+v", drops)
	}
	for _, f := range drops {
		switch {
		case strings.Contains(f.Statement, "notes"):
			if f.Severity != SeverityError || len(f.Queries) != 2 {
				t.Errorf("drop notes: %s, queries %+v", f.Severity, f.Queries)
			}
		case strings.Contains(f.Statement, "avatar"):
			if f.Severity != SeverityInfo || len(f.Queries) != 0 {
				t.Errorf("drop avatar: %s, queries %+v", f.Severity, f.Queries)
			}
		}
	}
}

func TestLintJSON(t *testing.T) {
	fs := lintCase(t, "testdata/lint/dt001_index")
	var buf bytes.Buffer
	if err := fs.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back []Finding
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != len(fs) || back[0].Rule != "DT001" || back[0].Line != 3 || back[0].Lock == "" || back[0].Fix == "" {
		t.Errorf("round trip = %+v", back)
	}
	buf.Reset()
	if err := Findings(nil).WriteJSON(&buf); err != nil || strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("empty findings JSON = %q, %v", buf.String(), err)
	}
}

func TestLintFixtures(t *testing.T) {
	safe, err := LintDir("../fixtures/migrations/safe", LintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(safe) != 0 {
		var b bytes.Buffer
		safe.WriteText(&b)
		t.Errorf("safe fixture migrations have findings:\n%s", b.String())
	}
	breaking, err := LintDir("../fixtures/migrations/breaking", LintOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, f := range breaking {
		files[filepath.Base(f.File)] = true
	}
	set, _ := Discover("../fixtures/migrations/breaking", FormatAuto)
	for _, m := range set.Migrations {
		if !files[filepath.Base(m.File)] {
			t.Errorf("%s has no finding", m.File)
		}
	}
}

func FuzzLint(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/lint/*/*.sql")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(string(b))
	}
	f.Add("ALTER TABLE t ADD COLUMN c int DEFAULT random(); SET lock_timeout = 0;")
	f.Add("/* unterminated")
	f.Add("CREATE INDEX ON ")
	f.Fuzz(func(t *testing.T, src string) {
		m := Migration{Version: "1", File: "fuzz.sql", Source: src, Up: splitSQL(src, newLineIndex(src), 0, len(src))}
		for _, format := range []Format{FormatPlain, FormatGoose, FormatGolangMigrate} {
			m.Format = format
			fs := Lint([]Migration{m}, LintOptions{Workload: NewWorkload(slices.Values([]string{src}))})
			for _, fd := range fs {
				if fd.Rule == "" || fd.Line < 1 {
					t.Fatalf("bad finding %+v", fd)
				}
			}
			_ = fs.WriteText(&bytes.Buffer{})
		}
	})
}

func FuzzGooseParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/goose/*/*.sql")
	for _, s := range seeds {
		b, _ := os.ReadFile(s)
		f.Add(string(b))
	}
	f.Add("-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementEnd\n")
	f.Add("-- +goose Up\r\nSELECT 1;\r\n-- +goose Down\r\n")
	f.Fuzz(func(t *testing.T, src string) {
		g, err := parseGoose(src)
		if err != nil {
			return
		}
		lines := strings.Count(src, "\n") + 1
		for _, st := range append(g.up, g.down...) {
			if st.Line < 1 || st.Line > lines || strings.TrimSpace(st.SQL) == "" {
				t.Fatalf("statement %+v out of a %d-line file", st, lines)
			}
		}
	})
}
