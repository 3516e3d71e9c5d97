package compare

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "empty keeps defaults", yaml: "", check: func(t *testing.T, c Config) {
			if c.PairWindow != DefaultPairWindow || c.Latency.Ratio != 2 || c.Latency.Floor != 5*time.Millisecond || c.Latency.WarmUp != 1 {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "overrides", yaml: "latency: {floor: 20ms, warm_up: 0, gate: p50}\nfloat_tolerance: 1e-9\nrules:\n  - sql: '(?i)audit'\n    ignore: true\n", check: func(t *testing.T, c Config) {
			if c.Latency.Floor != 20*time.Millisecond || c.Latency.WarmUp != 0 || c.Latency.Ratio != 2 || c.Latency.Gate != "p50" || c.FloatTolerance != 1e-9 {
				t.Errorf("config = %+v", c)
			}
			if len(c.Rules) != 1 || !c.Rules[0].matches("x", "SELECT * FROM AUDIT_log") {
				t.Errorf("rule does not match: %+v", c.Rules)
			}
		}},
		{name: "unknown key", yaml: "pair_windw: 3", wantErr: "field pair_windw not found"},
		{name: "bad regexp", yaml: "rules: [{sql: '(', ignore: true}]", wantErr: "rules[0].sql"},
		{name: "rule relaxing nothing", yaml: "rules: [{sql: 'x'}]", wantErr: "relaxes nothing"},
		{name: "ratio at most 1", yaml: "latency: {ratio: 1}", wantErr: "latency.ratio"},
		{name: "bad gate", yaml: "latency: {gate: p99}", wantErr: "latency.gate"},
		{name: "bad lint level", yaml: "fail_on_lint: sometimes", wantErr: "fail_on_lint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
	if err := (&Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "DefaultConfig") {
		t.Errorf("zero config: err = %v, want a hint to start from DefaultConfig", err)
	}
}

func TestDiffText(t *testing.T) {
	a := "h\n1\n2\n3\n4\n5\n6\n7\n8\n"
	b := "h\n1\n2\n3\n4\n5x\n6\n7\n8\n"
	got := DiffText(a, b, 50)
	want := []DiffLine{
		{DiffElided, "3 lines unchanged"}, {DiffEqual, "3"}, {DiffEqual, "4"}, {DiffDelete, "5"}, {DiffInsert, "5x"},
		{DiffEqual, "6"}, {DiffEqual, "7"}, {DiffElided, "1 line unchanged"},
	}
	if len(got) != len(want) {
		t.Fatalf("diff = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d = %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
	capped := DiffText("", strings.Repeat("x\n", 100), 5)
	if len(capped) != 5 || capped[4].Op != DiffElided || capped[4].Text != "96 lines more" {
		t.Errorf("capped diff = %v", capped)
	}
	if d := DiffText("same\n", "same", 5); len(d) != 1 || d[0].Op != DiffElided {
		t.Errorf("equal texts = %v, want one elided line", d)
	}
}
