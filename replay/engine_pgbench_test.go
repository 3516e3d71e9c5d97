package replay

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/dbtwin/dbtwin/clone/local"
	"github.com/dbtwin/dbtwin/clone/local/localtest"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestReplayPgbenchContention is the lock-wait test: pgbench tpcb-like with
// 4 clients on scale 1 (one branch row every transaction updates) captured
// through the proxy, replayed in ordered mode. A replayer that waits for
// each statement to finish before starting the next deadlocks on the first
// captured UPDATE that waited for another client's COMMIT (pgreplay hangs
// here); this one must finish, and leave every table as the original run
// did.
func TestReplayPgbenchContention(t *testing.T) {
	if testing.Short() {
		t.Skip("pgbench run: skipped in -short mode")
	}
	c := localtest.Start(t, localtest.WithTCP)
	pgbench := filepath.Join(c.BinDir(), "pgbench")
	if _, err := os.Stat(pgbench); err != nil {
		t.Skipf("pgbench not installed next to the server: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.CreateDatabase(ctx, "bench"); err != nil {
		t.Fatal(err)
	}
	sock, err := pgconn.ParseConfig(c.DSN("bench"))
	if err != nil {
		t.Fatal(err)
	}
	engRunPgbench(t, ctx, pgbench, sock.Host, int(sock.Port), "", "bench", "-i", "-s", "1", "-q")

	for _, tc := range []struct {
		mode     string
		duration string
		twice    bool // replay twice and compare the results files
	}{
		{"simple", "2", true},
		{"extended", "1", false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			orig, target, again := "orig_"+tc.mode, "target_"+tc.mode, "again_"+tc.mode
			for _, db := range []string{orig, target, again} {
				if err := c.CreateDatabaseFromTemplate(ctx, db, "bench"); err != nil {
					t.Fatal(err)
				}
			}
			up, err := pgconn.ParseConfig(c.TCPDSN(orig))
			if err != nil {
				t.Fatal(err)
			}
			pr := pxStartProxy(t, c.DSN("postgres"))
			engRunPgbench(t, ctx, pgbench, "127.0.0.1", pr.addr.Port, up.Password, orig,
				"-n", "-T", tc.duration, "-c", "4", "-j", "2", "-M", tc.mode)
			evs := pr.stop(t)
			stmts := 0
			for _, ev := range evs {
				if ev.Kind == KindStatement {
					stmts++
				}
			}
			if stmts < 1000 {
				t.Fatalf("captured only %d statements", stmts)
			}

			start := time.Now()
			var lines int
			_, rs, st := engReplayResults(t, ctx, evs, c.DSN(target), EngineOptions{})
			lines = len(rs)
			elapsed := time.Since(start)
			t.Logf("%s: captured %d events (%d statements); replayed in %v (%.0f statements/s): %+v",
				tc.mode, len(evs), stmts, elapsed.Round(time.Millisecond), float64(st.Statements)/elapsed.Seconds(), st)
			if lines != stmts || st.Errors+st.Timeouts+st.ConnLost+st.Skipped != 0 {
				t.Errorf("replayed %d of %d statements; stats %+v", lines, stmts, st)
			}
			if st.LockWaits == 0 {
				t.Error("no lock waits recorded: the workload should have had row-lock contention on pgbench_branches")
			}
			if tc.twice {
				// The same results again, except durations and lock waits:
				// when one commit releases several waiters for one row, the
				// server decides who goes first, so which statements waited
				// for whom may differ; what they returned may not.
				_, rs2, _ := engReplayResults(t, ctx, evs, c.DSN(again), EngineOptions{})
				a, b := engComparable(rs), engComparable(rs2)
				diffs, waitDiffs := 0, 0
				for i := range min(len(a), len(b)) {
					if !reflect.DeepEqual(a[i].LockWait, b[i].LockWait) {
						waitDiffs++
					}
					a[i].LockWait, b[i].LockWait = nil, nil
					if !reflect.DeepEqual(a[i], b[i]) {
						if diffs++; diffs <= 3 {
							t.Errorf("second replay differs at seq %d:\n first %+v\nsecond %+v", a[i].Seq, a[i], b[i])
						}
					}
				}
				if len(a) != len(b) || diffs > 0 {
					t.Errorf("second replay: %d results (first %d), %d differ", len(b), len(a), diffs)
				}
				t.Logf("second replay: identical results; lock waits differ in %d of %d statements", waitDiffs, len(a))
			}
			for _, q := range []string{
				"SELECT md5(string_agg(a::text, ',' ORDER BY aid)) FROM pgbench_accounts a",
				"SELECT md5(string_agg(b::text, ',' ORDER BY bid)) FROM pgbench_branches b",
				"SELECT md5(string_agg(t::text, ',' ORDER BY tid)) FROM pgbench_tellers t",
				// mtime differs; which client inserted a row first does not matter
				"SELECT count(*) || ':' || md5(string_agg(concat_ws('/', tid, bid, aid, delta), ',' ORDER BY tid, bid, aid, delta)) FROM pgbench_history",
			} {
				a, b := engQueryString(t, ctx, c, orig, q), engQueryString(t, ctx, c, target, q)
				if a != b {
					t.Errorf("%s\n original %s\n   replay %s", q, a, b)
				}
			}
		})
	}
}

func engRunPgbench(t *testing.T, ctx context.Context, pgbench, host string, port int, password, db string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, pgbench, append([]string{"-h", host, "-p", strconv.Itoa(port), "-U", local.Superuser}, append(args, db)...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGSSLMODE=disable")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench %v: %v\n%s", args, err, out)
	}
	t.Logf("pgbench %v:\n%s", args, engLastLines(string(out), 4))
}

func engLastLines(s string, n int) string {
	lines := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			lines++
			if lines > n {
				return s[i+1:]
			}
		}
	}
	return s
}

func engQueryString(t *testing.T, ctx context.Context, c *local.Cluster, db, q string) string {
	t.Helper()
	conn, err := c.Conn(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s *string
	if err := conn.QueryRow(ctx, q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if s == nil {
		return "NULL"
	}
	return fmt.Sprint(*s)
}
