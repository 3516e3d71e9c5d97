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
		want        string
	}{
		{"dump file: every tree as a whole", nil, "events plain mv"},
		{"no statistics on any parent", map[string]bool{}, "plain h0 events_2024 h1 mv"},
		{"statistics on the sub-partitioned table", map[string]bool{"events_2025": true}, "events_2025 plain events_2024 mv"},
		{"statistics on the root", map[string]bool{"events": true, "events_2025": true}, "events plain mv"},
	}
	for _, tt := range tests {
		var got []string
		for _, r := range planAnalyze(rels, tt.parentStats) {
			got = append(got, r.name)
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, g, tt.want)
		}
	}
}
