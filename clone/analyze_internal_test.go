package clone

import (
	"strings"
	"testing"
)

func TestPlanAnalyze(t *testing.T) {
	// events (partitioned) ─┬─ events_2024
	//                       └─ events_2025 (partitioned) ─┬─ h0
	//                                                     └─ h1
	rels := []analyzeRel{
		{oid: 1, name: "events", kind: "p", size: 300},
		{oid: 2, name: "events_2024", kind: "r", parent: 1, size: 100},
		{oid: 3, name: "events_2025", kind: "p", parent: 1, size: 200},
		{oid: 4, name: "h0", kind: "r", parent: 3, size: 120},
		{oid: 5, name: "h1", kind: "r", parent: 3, size: 80},
		{oid: 6, name: "plain", kind: "r", size: 150},
		{oid: 7, name: "mv", kind: "m", size: 10},
	}
	tests := []struct {
		name        string
		parentStats map[string]bool
		stats       *statsPlan
		want        string
	}{
		{"dump file: every tree as a whole", nil, nil, "events plain mv"},
		{"no statistics on any parent", map[string]bool{}, nil, "plain h0 events_2024 h1 mv"},
		{"statistics on the sub-partitioned table", map[string]bool{"events_2025": true}, nil, "events_2025 plain events_2024 mv"},
		{"statistics on the root", map[string]bool{"events": true, "events_2025": true}, nil, "events plain mv"},
		{"every table's statistics copied: the views left", map[string]bool{"events": true, "events_2025": true},
			&statsPlan{done: done(1, 2, 3, 4, 5, 6)}, "mv"},
		{"a partition masked: its parents are not copied, the root analyzed whole", map[string]bool{"events": true, "events_2025": true},
			&statsPlan{done: done(2, 5, 6)}, "events mv"},
		{"copied but for some columns; partitions without statistics", map[string]bool{},
			&statsPlan{done: done(6), cols: map[uint32][]string{6: {"a", "B"}}}, `plain ("a", "B") h0 events_2024 h1 mv`},
		{"masked columns: the root's ANALYZE covers them in its partitions", map[string]bool{"events": true, "events_2025": true},
			&statsPlan{done: done(1, 2, 3, 4, 5, 6), cols: map[uint32][]string{1: {"x"}, 2: {"x"}, 3: {"x"}, 4: {"x", "y"}, 5: {"x"}}},
			`events ("x") h0 ("y") mv`},
		{"a column of the root left", map[string]bool{"events": true},
			&statsPlan{done: done(1, 2, 3, 4, 5), cols: map[uint32][]string{1: {"x"}}}, `events ("x") plain mv`},
	}
	for _, tt := range tests {
		var got []string
		for _, r := range planAnalyze(rels, tt.parentStats, tt.stats) {
			got = append(got, r.name+r.cols)
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, g, tt.want)
		}
	}
}

func done(oids ...uint32) map[uint32]bool {
	m := map[uint32]bool{}
	for _, o := range oids {
		m[o] = true
	}
	return m
}
