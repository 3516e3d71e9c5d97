package clone

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplitRanges(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name      string
		bytes     int64
		total     int64
		jobs      int
		threshold int64
		tidRange  bool
		want      [][2]int64
	}{
		{"small table", 10 * mb, 1000 * mb, 4, 64 * mb, true, nil},
		{"large but a fair share", 200 * mb, 1000 * mb, 4, 64 * mb, true, nil},
		{"dominant: one range per job", 800 * mb, 1000 * mb, 4, 64 * mb, true,
			[][2]int64{{0, 25600}, {25600, 51200}, {51200, 76800}, {76800, -1}}},
		{"ranges no smaller than the threshold", 130 * mb, 140 * mb, 8, 64 * mb, true,
			[][2]int64{{0, 5547}, {5547, 11094}, {11094, -1}}},
		{"one job", 800 * mb, 1000 * mb, 1, 64 * mb, true, nil},
		{"server without TID range scans", 800 * mb, 1000 * mb, 4, 64 * mb, false, nil},
		{"splitting disabled", 800 * mb, 1000 * mb, 4, -1, true, nil},
		{"single block", 8192, 8192, 4, 1, true, nil},
	}
	for _, tt := range tests {
		tb := &table{bytes: tt.bytes, blocks: tt.bytes / 8192}
		got := splitRanges(tb, tt.total, tt.jobs, tt.threshold, tt.tidRange)
		if len(got) != len(tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
				break
			}
		}
		// The ranges tile the table: contiguous from block 0, open-ended.
		if len(got) > 0 {
			if got[0][0] != 0 || got[len(got)-1][1] != -1 {
				t.Errorf("%s: ranges %v do not cover the table", tt.name, got)
			}
			for i := 1; i < len(got); i++ {
				if got[i][0] != got[i-1][1] {
					t.Errorf("%s: gap between %v and %v", tt.name, got[i-1], got[i])
				}
			}
		}
	}
}

func TestPlanJobsLargestFirst(t *testing.T) {
	tables := []*table{
		{schema: "s", name: "big", bytes: 900 << 20, blocks: (900 << 20) / 8192},
		{schema: "s", name: "mid", bytes: 80 << 20, blocks: (80 << 20) / 8192},
		{schema: "s", name: "small", bytes: 20 << 20, blocks: (20 << 20) / 8192},
	}
	jobs, states := planJobs(tables, 4, 64<<20, true)
	if len(states) != 3 || states[0].chunks != 4 || states[1].chunks != 1 {
		t.Fatalf("states: %+v", states)
	}
	if len(jobs) != 6 {
		t.Fatalf("%d jobs, want 4 chunks + 2 tables", len(jobs))
	}
	for i := 1; i < len(jobs); i++ {
		if jobs[i].estBytes > jobs[i-1].estBytes {
			t.Errorf("job %d (%d bytes) after a smaller one (%d)", i, jobs[i].estBytes, jobs[i-1].estBytes)
		}
	}
	if jobs[0].split != true || jobs[4].ts.t.name != "mid" || jobs[4].split {
		t.Errorf("unexpected order: first %+v, fifth %+v", jobs[0], jobs[4])
	}
}

func TestTempName(t *testing.T) {
	for _, target := range []string{"app", strings.Repeat("x", 80), strings.Repeat("é", 40)} {
		got := tempName(target, "0123abcd")
		if len(got) > 63 || !utf8.ValidString(got) || !strings.HasSuffix(got, TempDatabaseMarker+"0123abcd") {
			t.Errorf("tempName(%q) = %q (%d bytes)", target, got, len(got))
		}
	}
	if got := tempName("app", "0123abcd"); got != "app__dbtwin_tmp_0123abcd" {
		t.Errorf("tempName(app) = %q", got)
	}
}

func TestGroupFirstErrorCancelsOthers(t *testing.T) {
	g := newGroup(context.Background())
	boom := errors.New("boom")
	g.Go(func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	g.Go(func(context.Context) error { return boom })
	if err := g.Wait(); !errors.Is(err, boom) {
		t.Errorf("Wait = %v, want boom", err)
	}
}

// TestEventsLoggedOnce: a caller's Progress reports phase and table events
// (as log lines when it renders no bars), so the clone's own log has them
// only when there is none; with both, a debug log showed each twice.
func TestEventsLoggedOnce(t *testing.T) {
	tests := []struct {
		name     string
		progress Progress
		want     bool
	}{
		{"no Progress", nil, true},
		{"a caller's Progress", recordingProgress{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Options{Progress: tt.progress}).withDefaults().logsEvents(); got != tt.want {
				t.Errorf("logsEvents() = %v, want %v", got, tt.want)
			}
		})
	}
}

type recordingProgress struct{ nopProgress }
