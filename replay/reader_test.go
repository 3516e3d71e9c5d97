package replay

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// readAll reads every event of input with opts.
func readAll(t *testing.T, input string, opts ReaderOptions) ([]Event, ReaderStats) {
	t.Helper()
	r, err := NewReader(context.Background(), "test.log", strings.NewReader(input), opts)
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	for r.Next() {
		evs = append(evs, r.Event())
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return evs, r.Stats()
}

// brief renders events one per line: session kind sql [error].
func brief(evs []Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "%d %s %s", ev.Seq, ev.Session, ev.Kind)
		if ev.SQL != "" {
			fmt.Fprintf(&b, " %q", ev.SQL)
		}
		if ev.Error != nil {
			fmt.Fprintf(&b, " error=%s", ev.Error.SQLState)
		}
		if ev.Duration != 0 {
			fmt.Fprintf(&b, " %v", ev.Duration)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// The inputs below are shaped after real PostgreSQL 15 lines (see
// testdata/logs) for situations a test cannot easily make a server produce.
func TestReaderSituations(t *testing.T) {
	tests := []struct {
		name  string
		opts  ReaderOptions
		input string
		want  string
		skips map[string]int64
		warns []string // each warning, as "line: reason prefix"
	}{
		{
			name: "pid reused without %c: a new session per connection",
			input: `2024-01-02 03:04:05.000 UTC [7] [unknown]@[unknown] LOG:  connection received: host=[local]
2024-01-02 03:04:05.001 UTC [7] u@d LOG:  connection authorized: user=u database=d
2024-01-02 03:04:05.002 UTC [7] u@d LOG:  statement: SELECT 1
2024-01-02 03:04:06.000 UTC [7] [unknown]@[unknown] LOG:  connection received: host=[local]
2024-01-02 03:04:06.001 UTC [7] u@d LOG:  connection authorized: user=u database=d
2024-01-02 03:04:06.002 UTC [7] u@d LOG:  statement: SELECT 2
2024-01-02 03:04:06.003 UTC [7] u@d LOG:  disconnection: session time: 0:00:00.003 user=u database=d host=[local]
2024-01-02 03:04:06.004 UTC [7] u@d LOG:  statement: SELECT 3
`,
			want:  "1 7 connect\n2 7 statement \"SELECT 1\"\n3 7.2 connect\n4 7.2 statement \"SELECT 2\"\n5 7.2 disconnect\n6 7.3 connect\n7 7.3 statement \"SELECT 3\"\n",
			skips: map[string]int64{SkipOther: 2},
		},
		{
			name: "pid and session start make the %c id",
			opts: ReaderOptions{Prefix: "%m [%p] %s "},
			input: `2024-01-02 03:04:05.000 UTC [10] 2024-01-02 03:04:04 UTC LOG:  statement: SELECT 1
`,
			want: "1 65937d24.a connect\n2 65937d24.a statement \"SELECT 1\"\n",
		},
		{
			name: "error ends the open statement; a later duration does not attach",
			opts: ReaderOptions{Prefix: "%m [%p] %e "},
			input: `2024-01-02 03:04:05.000 UTC [1] 00000 LOG:  statement: SELECT 1/0
2024-01-02 03:04:05.001 UTC [1] 22012 ERROR:  division by zero
2024-01-02 03:04:05.001 UTC [1] 22012 STATEMENT:  SELECT 1/0
2024-01-02 03:04:05.002 UTC [1] 00000 LOG:  duration: 0.010 ms
`,
			want:  "1 1 connect\n2 1 statement \"SELECT 1/0\" error=22012\n",
			skips: map[string]int64{SkipDurationNoStatement: 1},
		},
		{
			name: "error without STATEMENT line attaches to the open statement",
			opts: ReaderOptions{Prefix: "%m [%p] %e "},
			input: `2024-01-02 03:04:05.000 UTC [1] 00000 LOG:  statement: SELECT pg_sleep(10)
2024-01-02 03:04:15.000 UTC [1] 57014 ERROR:  canceling statement due to statement timeout
`,
			want: "1 1 connect\n2 1 statement \"SELECT pg_sleep(10)\" error=57014\n",
		},
		{
			name: "authentication failure is no statement",
			opts: ReaderOptions{Prefix: "%m [%p] %e "},
			input: `2024-01-02 03:04:05.000 UTC [1] 28P01 FATAL:  password authentication failed for user "x"
2024-01-02 03:04:05.000 UTC [1] 28P01 DETAIL:  Connection matched pg_hba.conf line 3
`,
			skips: map[string]int64{SkipErrorNoStatement: 1},
		},
		{
			name: "COPY FROM STDIN and its error are skipped",
			input: `2024-01-02 03:04:05.000 UTC [1] LOG:  statement: COPY t FROM STDIN
2024-01-02 03:04:05.001 UTC [1] ERROR:  invalid input syntax for type integer: "x"
2024-01-02 03:04:05.001 UTC [1] CONTEXT:  COPY t, line 1, column id: "x"
2024-01-02 03:04:05.001 UTC [1] STATEMENT:  COPY t FROM STDIN
2024-01-02 03:04:05.002 UTC [1] LOG:  statement: copy t to stdout
`,
			want:  "1 1 connect\n2 1 statement \"copy t to stdout\"\n",
			skips: map[string]int64{SkipCopyFromStdin: 2},
		},
		{
			name: "fetch from a portal is not a new statement",
			input: `2024-01-02 03:04:05.000 UTC [1] LOG:  execute S_1/C_2: SELECT * FROM big
2024-01-02 03:04:05.001 UTC [1] LOG:  execute fetch from S_1/C_2: SELECT * FROM big
`,
			want:  "1 1 connect\n2 1 statement \"SELECT * FROM big\"\n",
			skips: map[string]int64{SkipFetch: 1},
		},
		{
			name: "replication connections are skipped",
			input: `2024-01-02 03:04:05.000 UTC [1] LOG:  replication connection authorized: user=rep application_name=walreceiver
2024-01-02 03:04:05.001 UTC [1] LOG:  statement: IDENTIFY_SYSTEM
`,
			skips: map[string]int64{SkipReplication: 2},
		},
		{
			name: "malformed lines are located warnings",
			input: `2024-01-02 03:04:05.000 UTC [1] LOG:  statement: SELECT 1
garbage that matches nothing
	orphan continuation? no: continues the statement
2024-01-02 03:04:05.001 UTC [2] DETAIL:  a detail of another process
2024-01-02 03:04:05.002 UTC [1] LOG:  duration: fast ms
`,
			want:  "1 1 connect\n2 1 statement \"SELECT 1\\norphan continuation? no: continues the statement\"\n",
			warns: []string{"2: line does not match", "4: DETAIL line without", "5: malformed duration"},
		},
		{
			name:  "continuation before any message",
			input: "\tdangling\n",
			warns: []string{"1: continuation line without a message"},
		},
		{
			name: "unknown time zone: one warning, read as UTC",
			input: `2024-01-02 03:04:05.000 XYZT [1] LOG:  statement: SELECT 1
2024-01-02 03:04:06.000 XYZT [1] LOG:  statement: SELECT 2
`,
			want:  "1 1 connect\n2 1 statement \"SELECT 1\"\n3 1 statement \"SELECT 2\"\n",
			warns: []string{"1: time zone \"XYZT\" unknown"},
		},
		{
			name: "an idle session's statement is released at MaxPending",
			opts: ReaderOptions{MaxPending: 2, Prefix: "%m [%p] %e "},
			input: `2024-01-02 03:04:05.000 UTC [1] 00000 LOG:  statement: SELECT 1
2024-01-02 03:04:05.001 UTC [2] 00000 LOG:  statement: SELECT 2
2024-01-02 03:04:05.002 UTC [2] 00000 LOG:  statement: SELECT 3
2024-01-02 03:04:05.003 UTC [2] 00000 LOG:  statement: SELECT 4
2024-01-02 03:04:05.004 UTC [1] 42601 ERROR:  late
2024-01-02 03:04:05.004 UTC [1] 42601 STATEMENT:  SELECT 1
`,
			want:  "1 1 connect\n2 1 statement \"SELECT 1\"\n3 2 connect\n4 2 statement \"SELECT 2\"\n5 2 statement \"SELECT 3\"\n6 2 statement \"SELECT 4\"\n",
			warns: []string{"5: error logged after its statement was released"},
		},
		{
			name: "time filter makes up the connect of a session that began before",
			opts: ReaderOptions{Filter: Filter{From: time.Date(2024, 1, 2, 3, 4, 6, 0, time.UTC)}},
			input: `2024-01-02 03:04:05.000 UTC [1] u@d LOG:  connection authorized: user=u database=d
2024-01-02 03:04:05.500 UTC [1] u@d LOG:  statement: SELECT 1
2024-01-02 03:04:06.000 UTC [1] u@d LOG:  statement: SELECT 2
2024-01-02 03:04:07.000 UTC [1] u@d LOG:  disconnection: session time: 0:00:02.000 user=u database=d host=[local]
2024-01-02 03:04:07.000 UTC [2] u@d LOG:  connection authorized: user=u database=d
2024-01-02 03:04:07.000 UTC [3] u@d LOG:  statement: SELECT 3
`,
			want:  "1 1 connect\n2 1 statement \"SELECT 2\"\n3 1 disconnect\n4 2 connect\n5 3 connect\n6 3 statement \"SELECT 3\"\n",
			skips: map[string]int64{SkipFiltered: 2},
		},
		{
			name: "user and application filters",
			opts: ReaderOptions{Prefix: "%m [%p] %u@%d %a: ", Filter: Filter{Users: []string{"u"}, Applications: []string{"web"}}},
			input: `2024-01-02 03:04:05.000 UTC [1] u@d web: LOG:  statement: SELECT 1
2024-01-02 03:04:05.000 UTC [2] v@d web: LOG:  statement: SELECT 2
2024-01-02 03:04:05.000 UTC [3] u@d batch: LOG:  statement: SELECT 3
`,
			want:  "1 1 connect\n2 1 statement \"SELECT 1\"\n",
			skips: map[string]int64{SkipFiltered: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.Prefix == "" {
				tt.opts.Prefix = "%m [%p] %q%u@%d "
			}
			evs, st := readAll(t, tt.input, tt.opts)
			if got := brief(evs); got != tt.want {
				t.Errorf("events:\n%s\nwant:\n%s", got, tt.want)
			}
			for reason, n := range tt.skips {
				if st.Skipped[reason] != n {
					t.Errorf("skipped %q %d times, want %d (all: %v)", reason, st.Skipped[reason], n, st.Skipped)
				}
			}
			if int(st.WarningCount) != len(tt.warns) {
				t.Errorf("warnings %v, want %v", st.Warnings, tt.warns)
			}
			for i, w := range tt.warns {
				if i < len(st.Warnings) {
					got := fmt.Sprintf("%d: %s", st.Warnings[i].Line, st.Warnings[i].Reason)
					if !strings.HasPrefix(got, w) || st.Warnings[i].File != "test.log" {
						t.Errorf("warning %d = %s:%s, want test.log:%s…", i, st.Warnings[i].File, got, w)
					}
				}
			}
		})
	}
}

func TestReaderExactTimesAndDurations(t *testing.T) {
	input := `2024-01-02 03:04:05.250 UTC [1] LOG:  duration: 250.000 ms  statement: SELECT pg_sleep(0.25)
2024-01-02 03:04:06.000 UTC [1] LOG:  duration: 0.000 ms  statement: SELECT 1
`
	evs, _ := readAll(t, input, ReaderOptions{Prefix: "%m [%p] "})
	if len(evs) != 3 {
		t.Fatalf("events:\n%s", brief(evs))
	}
	// Logged when it ended: the statement started 250 ms earlier.
	if want := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC); !evs[1].Time.Equal(want) || evs[1].Duration != 250*time.Millisecond {
		t.Errorf("time %v duration %v, want %v 250ms", evs[1].Time, evs[1].Duration, want)
	}
	if evs[2].Duration <= 0 {
		t.Errorf("a 0.000 ms duration must still be known, got %v", evs[2].Duration)
	}
}

func TestReaderTimeZones(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	input := `2024-01-02 03:04:05.000 CET [1] LOG:  statement: SELECT 1
2024-07-02 03:04:05.000 CEST [1] LOG:  statement: SELECT 2
2024-07-02 03:04:05.000 +0530 [1] LOG:  statement: SELECT 3
`
	evs, st := readAll(t, input, ReaderOptions{Prefix: "%m [%p] ", TimeZone: berlin})
	if st.WarningCount != 0 {
		t.Fatalf("warnings: %v", st.Warnings)
	}
	want := []string{"2024-01-02T02:04:05Z", "2024-07-02T01:04:05Z", "2024-07-01T21:34:05Z"}
	var got []string
	for _, ev := range evs {
		if ev.Kind == KindStatement {
			got = append(got, ev.Time.UTC().Format(time.RFC3339))
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("times %v, want %v", got, want)
	}
}

func TestReaderGzipAndOpen(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	fmt.Fprintf(zw, "2024-01-02 03:04:05.000 UTC [1] LOG:  statement: SELECT 1\n")
	zw.Close()
	r, err := NewReader(context.Background(), "x.log.gz", &buf, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r.Next() {
		n++
	}
	if r.Err() != nil || n != 2 || r.Stats().Prefix != "%m [%p] " {
		t.Errorf("gzip: %d events, err %v, stats %+v", n, r.Err(), r.Stats())
	}
	if _, err := Open(context.Background(), "testdata/does-not-exist.log", ReaderOptions{}); err == nil || !strings.Contains(err.Error(), "open workload") {
		t.Errorf("Open(missing) = %v", err)
	}
}

func TestReaderCancel(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&b, "2024-01-02 03:04:05.000 UTC [%d] LOG:  statement: SELECT %d\n", i%7, i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := NewReader(ctx, "x.log", strings.NewReader(b.String()), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r.Next() {
		n++
		if n == 10 {
			cancel()
		}
	}
	if !errors.Is(r.Err(), context.Canceled) || n > 1000 {
		t.Errorf("after cancel: %d events, err %v", n, r.Err())
	}
}

func TestReaderLongLines(t *testing.T) {
	long := strings.Repeat("x", 3000)
	input := "2024-01-02 03:04:05.000 UTC [1] LOG:  statement: SELECT '" + long + "'\n" +
		"2024-01-02 03:04:05.000 UTC [1] LOG:  statement: SELECT 2\n\t" + long + "\n" +
		"2024-01-02 03:04:05.000 UTC [1] LOG:  statement: SELECT 3\n"
	evs, st := readAll(t, input, ReaderOptions{MaxRecordBytes: 1000})
	if got := brief(evs); got != "1 1 connect\n2 1 statement \"SELECT 3\"\n" {
		t.Errorf("events:\n%s", got)
	}
	if st.WarningCount != 2 || st.Warnings[0].Line != 1 || st.Warnings[1].Line != 3 {
		t.Errorf("warnings %v, want lines 1 and 3", st.Warnings)
	}
}

func TestParseConnectionAuthorized(t *testing.T) {
	tests := []struct{ msg, user, db, app string }{
		{"user=u database=d", "u", "d", ""},
		{"user=u database=d application_name=psql", "u", "d", "psql"},
		{"user=u database=d application_name=my app SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)", "u", "d", "my app"},
		{"user=u database=my db SSL enabled (protocol=TLSv1.3)", "u", "my db", ""},
		{"user=u", "u", "", ""},
		{"nonsense", "", "", ""},
	}
	for _, tt := range tests {
		u, d, a := parseConnectionAuthorized(tt.msg)
		if u != tt.user || d != tt.db || a != tt.app {
			t.Errorf("parseConnectionAuthorized(%q) = %q %q %q, want %q %q %q", tt.msg, u, d, a, tt.user, tt.db, tt.app)
		}
	}
}
