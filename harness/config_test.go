package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"workload.jsonl", "masking.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "migrations"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ACME_DSN", "host=/tmp dbname=acme")
	const good = `version: 1
tenants:
  - name: acme
    source: ${ACME_DSN}
  - name: globex
    dump: globex.dump
masking:
  rules: masking.yaml
migrations:
  dir: migrations
workload:
  file: workload.jsonl
compare:
  latency:
    ratio: 3
    floor: 10ms
report:
  formats: [markdown, junit]
`
	tests := []struct {
		name    string
		yaml    string
		wantErr []string // substrings; none: valid
	}{
		{"valid", good, nil},
		{"unknown key", strings.Replace(good, "masking:", "maskin:", 1), []string{"config.yaml", "line 7", "maskin"}},
		{"bad version", strings.Replace(good, "version: 1", "version: 2", 1), []string{"config.yaml:1: version: want 1"}},
		{"source and dump", strings.Replace(good, "    dump: globex.dump", "    dump: globex.dump\n    source: x", 1), []string{"config.yaml:5: tenants[1]: give exactly one"}},
		{"bad tenant name", strings.Replace(good, "name: acme", "name: ACME Corp", 1), []string{"config.yaml:3: tenants[0].name"}},
		{"duplicate tenant", strings.Replace(good, "name: globex", "name: acme", 1), []string{"tenants[1].name", "listed twice"}},
		{"missing env", strings.Replace(good, "${ACME_DSN}", "${NO_SUCH_VAR_DBTWIN}", 1), []string{"NO_SUCH_VAR_DBTWIN", "not set"}},
		{"missing workload", strings.Replace(good, "file: workload.jsonl", "file: nope.jsonl", 1), []string{"config.yaml:12: workload.file", "nope.jsonl"}},
		{"no migrations", strings.Replace(good, "  dir: migrations\n", "", 1), []string{"migrations: give dir"}},
		{"bad format", strings.Replace(good, "[markdown, junit]", "[markdown, pdf]", 1), []string{"report.formats[1]", `"pdf"`}},
		{"bad backend", good + "sandbox:\n  backend: k8s\n", []string{"sandbox.backend", `"k8s"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig(filepath.Join(dir, "config.yaml"), []byte(tt.yaml))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				if cfg.Tenants[0].Source != "host=/tmp dbname=acme" {
					t.Errorf("env not expanded: %q", cfg.Tenants[0].Source)
				}
				if cfg.Tenants[1].Dump != filepath.Join(dir, "globex.dump") {
					t.Errorf("dump path not resolved against the config's directory: %q", cfg.Tenants[1].Dump)
				}
				if cfg.Compare.Latency.Ratio != 3 || cfg.Compare.Latency.Floor.Milliseconds() != 10 {
					t.Errorf("compare settings not read: %+v", cfg.Compare.Latency)
				}
				if cfg.Report.Dir != "dbtwin-report" || cfg.Sandbox.Backend != "local" {
					t.Errorf("defaults not applied: %+v %+v", cfg.Report, cfg.Sandbox)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestExampleConfig keeps the documented example (.github/examples) valid.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../.github/examples/dbtwin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range []string{"masking.yaml", "workload.jsonl"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "migrations"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ACME_DSN", "host=/tmp dbname=acme")
	cfg, err := ParseConfig(filepath.Join(dir, "dbtwin.yaml"), b)
	if err != nil {
		t.Fatalf("the example config does not parse: %v", err)
	}
	if len(cfg.Tenants) != 2 || len(cfg.Compare.Rules) != 1 || !cfg.Compare.Rules[0].Ignore {
		t.Errorf("example config read as %+v", cfg)
	}
}
